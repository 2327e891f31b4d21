"""This node's shared app hosts, started (or found again) by the PiCloud
process that runs on the node.

Each node runs ``app_hosts`` hosts named ``picloud-host-<node>-<i>`` and
pinned to it, so the hosts spread over the cluster with its nodes and die
with their node (their apps then activate on the other nodes' hosts). They
are detached: they outlive a front door killed on their node and serve the
other front doors meanwhile; a new process on the node finds them by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import ray

from picloud.config import Settings
from picloud.hosting._host_actor import node_host_names, start_app_host
from picloud.hosting._remote import call_remote

__all__ = ["NodeHosts", "current_node_id"]

log = logging.getLogger(__name__)

_STOP_TIMEOUT_S = 30.0


def current_node_id() -> str:
    """The Ray node this process is attached to."""
    return str(ray.get_runtime_context().get_node_id())


class NodeHosts:
    """See the module docstring."""

    def __init__(self, settings: Settings, dsn: str) -> None:
        self.node_id = current_node_id()
        self.names = node_host_names(self.node_id, settings.app_hosts)
        self.handles = {
            name: start_app_host(name, settings, dsn, node_id=self.node_id)
            for name in self.names
        }
        self._timeout_s = settings.host_heartbeat_timeout_ms / 1000

    async def ready(self, seconds: float) -> list[int]:
        """Wait until every host answers (it has beaten once); their pids."""
        pids: list[int] = await asyncio.gather(
            *(
                call_remote(h.pid.remote(), what=f"{name} pid", seconds=seconds)
                for name, h in self.handles.items()
            )
        )
        return pids

    async def drain(self) -> None:
        """Take this node out of PiCloud without failing a request: the hosts
        leave the registry, keep answering until every front door has placed
        their apps elsewhere (one heartbeat timeout), then passivate their
        apps and stop."""
        await self._each("leave", _STOP_TIMEOUT_S)
        await asyncio.sleep(self._timeout_s)
        await self._each("shutdown", _STOP_TIMEOUT_S)
        self.kill()
        log.info("app hosts of node %s stopped", self.node_id[:12])

    async def _each(self, method: str, seconds: float) -> None:
        calls = [
            call_remote(
                getattr(h, method).remote(), what=f"{name} {method}", seconds=seconds
            )
            for name, h in self.handles.items()
        ]
        for name, outcome in zip(
            self.handles,
            await asyncio.gather(*calls, return_exceptions=True),
            strict=True,
        ):
            if isinstance(outcome, Exception):
                log.warning("%s did not %s: %s", name, method, outcome)

    def kill(self) -> None:
        """Stop the hosts at once (Ray does not restart them)."""
        for handle in self.handles.values():
            with contextlib.suppress(Exception):
                ray.kill(handle, no_restart=True)

    def handle_list(self) -> list[Any]:
        return list(self.handles.values())
