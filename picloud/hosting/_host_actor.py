"""AppHosts as named, detached Ray actors (DESIGN.md "Hosting on Ray").

Delivery and ordering are the channel's and the AppActor's (see those
modules); this shell adds what Ray is for: a named process per host that Ray
restarts when it dies (``max_restarts=-1``), found again by name. On start a
restarted host reports the app whose script got its predecessor killed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import ray

from picloud.config import Settings
from picloud.domain.commands import RecordHostKill
from picloud.errors import PiCloudError
from picloud.event_loop import freeze_heap
from picloud.hosting._app_host import AppHost, read_offender

__all__ = ["host_names", "quarantine_host_name", "start_app_host"]

log = logging.getLogger(__name__)

_REPORT_TIMEOUT_S = 30.0


def host_names(settings: Settings) -> list[str]:
    return [f"picloud-host-{i}" for i in range(settings.app_hosts)]


def quarantine_host_name(app_id: str) -> str:
    return f"picloud-quarantine-{app_id}"


class _AppHostActor:
    def __init__(self, name: str, settings: Settings, dsn: str, bind_host: str) -> None:
        self._settings = settings
        self._bind_host = bind_host
        self._host = AppHost(name, settings, dsn)
        self._booted: asyncio.Task[None] | None = None

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


def start_app_host(name: str, settings: Settings, dsn: str) -> Any:
    """Create the named host actor, or join the running one of the namespace."""
    bind_host = "127.0.0.1" if settings.ray_address is None else _node_ip()
    return _RemoteAppHost.options(
        name=name,
        namespace=settings.ray_namespace,
        lifetime="detached",
        get_if_exists=True,
    ).remote(name, settings, dsn, bind_host)


def _node_ip() -> str:
    return str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]  # Ray is untyped
