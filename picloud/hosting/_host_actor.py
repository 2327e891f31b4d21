"""AppHosts as named, detached Ray actors (DESIGN.md "Hosting on Ray").

Delivery and ordering are the channel's and the AppActor's (see those
modules); this shell adds what Ray is for: a named process per host that Ray
restarts when it dies (``max_restarts=-1``), found again by name. On start a
restarted host reports the app whose script got its predecessor killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from picloud.config import Settings
from picloud.domain.commands import RecordHostKill
from picloud.errors import PiCloudError
from picloud.event_loop import freeze_heap
from picloud.hosting._app_host import AppHost, read_offender
from picloud.logs import configure_logging
from picloud.metrics import snapshot

__all__ = ["node_host_names", "quarantine_host_name", "start_app_host"]

log = logging.getLogger(__name__)

_REPORT_TIMEOUT_S = 30.0
_NODE_CHARS = 12  # of the node id's 56 hex digits: readable, and unique enough


def node_host_names(node_id: str, count: int) -> list[str]:
    """The shared hosts of one node: each node runs its own, pinned to it."""
    return [f"picloud-host-{node_id[:_NODE_CHARS]}-{i}" for i in range(count)]


def quarantine_host_name(app_id: str) -> str:
    return f"picloud-quarantine-{app_id}"


class _AppHostActor:
    def __init__(
        self, name: str, settings: Settings, dsn: str, node_id: str | None
    ) -> None:
        self._settings = settings
        # A process of Ray's: it logs as the front door does only if told here.
        configure_logging(settings.log_level, settings.log_format)
        # Alone on a machine, hosts serve only its loopback; clustered, the
        # front doors of the other nodes reach them on the node's address.
        local = settings.ray_address is None
        self._bind_host = "127.0.0.1" if local else _node_ip()
        self._host = AppHost(name, settings, dsn, node_id=node_id)
        self._booted: asyncio.Task[None] | None = None
        # Boot now, not on the first call: nobody calls a host that Ray has
        # restarted (front doors find it in the registry, once it beats).
        # Ray runs an async actor's __init__ on the actor's event loop.
        with contextlib.suppress(RuntimeError):  # no loop: on first call
            self._booted = asyncio.get_running_loop().create_task(self._boot())

    async def _ready(self) -> AppHost:
        if self._booted is None:
            self._booted = asyncio.create_task(self._boot())
        await asyncio.shield(self._booted)
        return self._host

    async def _boot(self) -> None:
        await self._host.start(self._bind_host)
        _serve_at_normal_priority()
        freeze_heap()
        offender = read_offender(self._settings, self._host.name)
        if offender is None:
            return
        command = RecordHostKill(
            host=self._host.name, execution_id=offender.execution_id
        )
        try:
            actor = await self._host.actor(offender.app_id)
            await actor.submit(command, _REPORT_TIMEOUT_S)
        except PiCloudError as e:
            log.warning("could not record the kill by app %s: %s", offender.app_id, e)

    async def address(self) -> tuple[str, int]:
        host = await self._ready()
        assert host.address is not None  # noqa: S101  # set by start()
        return host.address

    async def pid(self) -> int:
        await self._ready()
        return os.getpid()

    async def stats(self) -> dict[str, object]:
        stats = (await self._ready()).stats()
        stats["nice"] = os.getpriority(os.PRIO_PROCESS, 0)  # the loop's thread
        return stats

    async def metrics(self) -> str:
        """This process's metrics in Prometheus' text format (a front door
        asks when it is scraped)."""
        return snapshot()

    async def leave(self) -> None:
        """Leave the registry (see AppHost.leave); the host still answers."""
        await (await self._ready()).leave()

    async def shutdown(self) -> None:
        if self._booted is not None:
            await self._host.stop()


def _serve_at_normal_priority() -> None:
    """Ray starts its workers at nice 15, a priority for batch tasks. A host
    serves requests: at 15, any busy neighbour on the machine starves it,
    and its replies wait behind a test suite or a compiler. On Linux a
    nice value is per thread: this raises the event loop's thread and the
    script threads it starts later, not Ray's own threads."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError as e:  # raising a priority needs CAP_SYS_NICE or RLIMIT_NICE
        log.warning(
            "app host stays at nice %d (%s); start Ray with RAY_worker_niceness=0",
            os.getpriority(os.PRIO_PROCESS, 0),
            e,
        )


_RemoteAppHost: Any = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(
    _AppHostActor
)


def start_app_host(
    name: str, settings: Settings, dsn: str, *, node_id: str | None = None
) -> Any:
    """Create the named host actor, or join the running one of the namespace.

    With ``node_id`` the host is a shared one pinned to that node (it dies
    with the node, and never runs elsewhere: placement moves its apps);
    without, Ray may run it anywhere, and restarts it elsewhere if its node
    dies (a quarantined app's host of its own).
    """
    options: dict[str, Any] = {
        "name": name,
        "namespace": settings.ray_namespace,
        "lifetime": "detached",
        "get_if_exists": True,
    }
    if node_id is not None:
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
            node_id, soft=False
        )
    return _RemoteAppHost.options(**options).remote(name, settings, dsn, node_id)


def _node_ip() -> str:
    return str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]  # Ray is untyped
