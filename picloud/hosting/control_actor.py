"""The ControlPlane hosted as a named, detached Ray actor on the head node,
or — alone on a machine — in the front door's own process.

A cluster has one plane for every front door. A single machine has one
front door, so there it runs the plane itself (:class:`LocalControlPlane`):
one process and one Ray actor fewer (~57 MB), and one hop less per admin
command. Both write the ``system`` stream the same way (see
:mod:`picloud.actors.control_plane`), which also takes the CLI's writes.

Delivery: at most once per call; the caller retries with the same idempotency
key, and the plane answers a repeated key with its first result. Ordering: one
command at a time, in arrival order (the plane's lock). Restarts: Ray restarts
the actor (``max_restarts=-1``); it reloads the system stream on first use.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from typing import Any, TypeVar

import ray

import picloud
from picloud.actors.control_plane import ControlPlane
from picloud.actors.protocol import Failure, guarded
from picloud.config import Settings
from picloud.domain.system import Answer, SystemCommand, answer
from picloud.errors import ActorError
from picloud.events import EventMeta
from picloud.hosting._remote import call_remote
from picloud.store import (
    ROUTING_ONLY,
    CommitSignals,
    Database,
    EventLog,
    relay_commit_signals,
)

__all__ = [
    "CONTROL_PLANE_NAME",
    "ControlPlaneClient",
    "LocalControlPlane",
    "RemoteControlPlane",
    "start_control_plane",
]

CONTROL_PLANE_NAME = "picloud-control-plane"
log = logging.getLogger(__name__)
T = TypeVar("T")


class _ControlPlaneActor:
    def __init__(self, settings: Settings, dsn: str) -> None:
        self._settings = settings
        self._dsn = dsn
        self._plane: ControlPlane | None = None
        self._starting = asyncio.Lock()
        self._db: Database | None = None
        self._bridge: asyncio.Task[None] | None = None

    async def _ready(self) -> ControlPlane:
        async with self._starting:
            if self._db is None:
                # No connection yet: the plane comes up while the database is
                # down, and each call fails fast until it is back.
                signals = CommitSignals(announced=ROUTING_ONLY)
                self._db = await Database.open(
                    self._dsn, self._settings, signals=signals, init_size=0, max_size=4
                )
                self._bridge = asyncio.create_task(self._announce(signals))
            if self._plane is None:
                plane = ControlPlane(self._db.log)
                await plane.catch_up()
                self._plane = plane
            return self._plane

    async def _announce(self, signals: CommitSignals) -> None:
        async with relay_commit_signals(
            signals, self._dsn, self._settings, listen=False
        ):
            await asyncio.Event().wait()

    async def execute(
        self, command: SystemCommand, meta: EventMeta
    ) -> Answer | Failure:
        async def work() -> Answer:
            plane = await self._ready()
            recorded = await plane.execute(command, meta)
            return answer(plane.state, command, recorded)

        return await guarded(work)

    async def ping(self) -> int:
        await self._ready()
        return os.getpid()

    async def version(self) -> str:
        """The PiCloud version this process runs (its node's installed one)."""
        return picloud.__version__


_RemoteControlPlane: Any = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(
    _ControlPlaneActor
)


# Ray gives its head node this resource. The head holds the cluster's GCS:
# when it goes the cluster goes, so the plane there outlives every other
# node, and a worker's loss never takes admin writes away (Ray would only
# restart the plane once its own, slower, health check saw the node dead).
_ON_THE_HEAD = {"node:__internal_head__": 0.001}


def start_control_plane(settings: Settings, dsn: str) -> Any:
    """Create the control-plane actor on the head node, or join the running one."""
    return _RemoteControlPlane.options(
        name=CONTROL_PLANE_NAME,
        namespace=settings.ray_namespace,
        lifetime="detached",
        get_if_exists=True,
        resources=_ON_THE_HEAD,
    ).remote(settings, dsn)


class ControlPlaneClient:
    """How a front door runs system commands: :class:`RemoteControlPlane`
    (the cluster's actor) or :class:`LocalControlPlane` (in this process)."""

    async def execute(self, command: SystemCommand, meta: EventMeta) -> Answer:
        """Run ``command``; the answer is the changed thing now (None for deletes)."""
        raise NotImplementedError

    async def execute_as(
        self, kind: type[T], command: SystemCommand, meta: EventMeta
    ) -> T:
        """:meth:`execute` for a command whose answer is a ``kind``."""
        result = await self.execute(command, meta)
        if not isinstance(result, kind):
            raise ActorError(
                f"control plane answered {type(result).__name__} to "
                f"{type(command).__name__}, not {kind.__name__}"
            )
        return result

    async def ping(self, seconds: float = 5.0) -> int:
        """The plane's process id, once it answers."""
        raise NotImplementedError


class LocalControlPlane(ControlPlaneClient):
    """The plane in this process (a single machine's one front door)."""

    def __init__(self, log: EventLog) -> None:
        self._plane = ControlPlane(log)

    async def start(self) -> None:
        await self._plane.catch_up()

    async def execute(self, command: SystemCommand, meta: EventMeta) -> Answer:
        recorded = await self._plane.execute(command, meta)
        return answer(self._plane.state, command, recorded)

    async def ping(self, seconds: float = 5.0) -> int:
        return os.getpid()


class RemoteControlPlane(ControlPlaneClient):
    """The cluster's plane actor, with Ray's errors translated."""

    def __init__(self, handle: Any, *, timeout: float = 30.0) -> None:
        self.handle = handle
        self._timeout = timeout

    async def execute(self, command: SystemCommand, meta: EventMeta) -> Answer:
        result: Answer = await call_remote(
            self.handle.execute.remote(command, meta),
            what=f"control plane {type(command).__name__}",
            seconds=self._timeout,
        )
        return result

    async def ping(self, seconds: float = 5.0) -> int:
        pid: int = await call_remote(
            self.handle.ping.remote(), what="control plane ping", seconds=seconds
        )
        return pid

    async def renew_if_older(self, seconds: float = 10.0) -> bool:
        """Restart the plane if it runs an older PiCloud than this process (a
        rolling upgrade: the plane outlives the front door that made it).
        Ray restarts it in a new process, which imports the head's installed
        PiCloud. Never for a newer one, or old and new would take turns."""
        theirs: str = await call_remote(
            self.handle.version.remote(), what="control plane version", seconds=seconds
        )
        if _release(theirs) >= _release(picloud.__version__):
            return False
        log.warning(
            "the control plane runs PiCloud %s, this is %s: restarting it",
            theirs,
            picloud.__version__,
        )
        ray.kill(self.handle, no_restart=False)
        return True


def _release(version: str) -> tuple[int, ...]:
    """``1.2.3`` as (1, 2, 3); anything after the numbers is ignored."""
    numbers = []
    for part in version.split("."):
        digits = "".join(itertools.takewhile(str.isdigit, part))
        if not digits:
            break
        numbers.append(int(digits))
    return tuple(numbers)
