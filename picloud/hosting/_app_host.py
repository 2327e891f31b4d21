"""AppHost: one process (a Ray actor) that hosts many AppActors.

Guarantees:
- Each app hosted here has at most one active AppActor; commands for it are
  queued in arrival order (the actor's own queue).
- Apps activate on their first command (snapshot + log tail) and passivate
  when idle longer than ``app_idle_timeout_s`` or when more than
  ``app_host_max_active`` are active (least recently used first). A new
  activation of an app waits until its previous actor finished passivating.
  The memory of passivated apps goes back to the system at the next idle
  sweep (every ``min(30, app_idle_timeout_s / 2)`` seconds).
- A shared host (one with a node) records itself alive in the registry every
  heartbeat interval and lets go of (passivates) the apps that placement
  now puts on another live host, so a node that joins takes its share.
- Second sandbox layer: a watchdog thread kills this process when a script
  overruns its hard deadline, after recording the offending app in
  ``<data_dir>/hosts/<name>.offender``; the restarted process reports it to
  the control plane, which quarantines an app that does it repeatedly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec

from picloud.actors.app_actor import AppActor
from picloud.actors.invoker import Invoker
from picloud.actors.protocol import Call, Done, Reply, ReplyFrame, failure_of
from picloud.config import Settings
from picloud.domain.commands import Deactivate, Settle
from picloud.errors import NotFound, NotPlacedHere, PiCloudError
from picloud.event_loop import release_memory
from picloud.hosting._channel import ChannelServerProtocol
from picloud.hosting._heartbeat import Heartbeat
from picloud.hosting._membership import rendezvous
from picloud.scripting import AppInfo, CurrentInvocation, Watchdog
from picloud.store import (
    ROUTING_ONLY,
    CommitSignals,
    Database,
    HostRow,
    relay_commit_signals,
)

__all__ = ["AppHost", "Offender", "read_offender"]

log = logging.getLogger(__name__)


class Offender(msgspec.Struct, frozen=True):
    """The invocation that was running when the watchdog killed the host."""

    app_id: str
    execution_id: str
    at: float


def offender_path(settings: Settings, host_name: str) -> Path:
    return settings.data_path / "hosts" / f"{host_name}.offender"


def read_offender(settings: Settings, host_name: str) -> Offender | None:
    """Take (read and remove) the record a killed predecessor left behind."""
    path = offender_path(settings, host_name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    path.unlink(missing_ok=True)
    try:
        return msgspec.json.decode(data, type=Offender)
    except msgspec.DecodeError:
        return None


class AppHost:
    """Hosts apps in this process; see the module docstring."""

    def __init__(
        self, name: str, settings: Settings, dsn: str, *, node_id: str | None = None
    ) -> None:
        """``node_id``: the node of a shared host (placement is over those);
        None for a host of its own (quarantine), which is placed by name."""
        self.name = name
        self._node_id = node_id
        self._heartbeat: Heartbeat | None = None
        self._unchecked: set[str] = set()  # activated since the last beat
        self._passivated = 0  # since the last sweep
        self._moved: dict[str, float] = {}  # app -> refused until (monotonic)
        self._leaving = False
        self._settings = settings
        self._dsn = dsn
        # The scripts that outrun their slice on the event loop (see Invoker).
        self._scripts = ThreadPoolExecutor(
            settings.script_threads, thread_name_prefix="lua"
        )
        self._actors: OrderedDict[str, AppActor] = OrderedDict()
        self._activating: dict[str, asyncio.Task[AppActor]] = {}
        self._closing: dict[str, asyncio.Task[None]] = {}
        self._db: Database | None = None
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._watchdog = Watchdog(self._record_offender)
        self.address: tuple[str, int] | None = None
        if settings.cluster_secret is None:
            raise ValueError("an app host needs the cluster secret")
        self._secret = settings.cluster_secret

    async def start(self, bind_host: str = "127.0.0.1") -> tuple[str, int]:
        signals = CommitSignals(announced=ROUTING_ONLY)
        # No connection yet: a host (re)started while the database is down
        # still comes up, and answers 503s until the database is back.
        self._db = await Database.open(
            self._dsn, self._settings, signals=signals, init_size=0
        )
        self._tasks.append(asyncio.create_task(self._announce(signals)))
        self._tasks.append(asyncio.create_task(self._sweep_idle()))
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ChannelServerProtocol(self.dispatch, self._secret), bind_host, 0
        )
        port = self._server.sockets[0].getsockname()[1]
        self.address = (bind_host, port)
        self._watchdog.start()
        if self._node_id is not None:
            me = HostRow(self.name, self._node_id, bind_host, port)
            self._heartbeat = Heartbeat(self._db.hosts, me, self._settings, self._beat)
            await self._heartbeat.beat()  # known at once, not one interval later
            self._tasks.append(asyncio.create_task(self._heartbeat.run()))
        log.info(
            "app host %s serving on %s:%d (pid %d)",
            self.name,
            bind_host,
            port,
            os.getpid(),
        )
        return self.address

    async def leave(self) -> None:
        """Leave the registry and run no more calls: each is refused as not
        run, and the front door sends it again to the app's next host once
        its next refresh shows this one gone. The calls already queued here
        finish."""
        self._leaving = True
        if self._heartbeat is not None:
            await self._heartbeat.leave()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for app_id in list(self._actors):
            self._passivate(app_id)
        await asyncio.gather(*self._closing.values(), return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._watchdog.stop()
        self._scripts.shutdown(wait=False, cancel_futures=True)
        if self._db is not None:
            await self._db.close()

    async def _announce(self, signals: CommitSignals) -> None:
        async with relay_commit_signals(
            signals, self._dsn, self._settings, listen=False
        ):
            await asyncio.Event().wait()

    # -- calls ----------------------------------------------------------------------

    def dispatch(self, call: Call, respond: Callable[[ReplyFrame], None]) -> None:
        """Route one call to its app's actor; ``respond`` gets the reply."""

        def reply(future: asyncio.Future[Reply]) -> None:
            respond(ReplyFrame(call.id, future.result()))

        if isinstance(call.command, Deactivate):
            self._passivate(call.app_id)
            respond(ReplyFrame(call.id, Done()))
            return
        refusal = self._refusal(call.app_id)
        if refusal is not None:
            respond(ReplyFrame(call.id, failure_of(refusal)))
            return
        actor = self._actors.get(call.app_id)
        if isinstance(call.command, Settle) and actor is None:
            # Not active: nothing pending, unless its last actor is closing
            # (which appends what it had); activating it would be waste.
            self._later(self._settled(call.app_id), reply)
            return
        if actor is not None and (actor.gone or actor.broken is not None):
            self._passivate(call.app_id)
            actor = None
        if actor is not None:
            self._actors.move_to_end(call.app_id)
            actor.submit(call.command, call.timeout_ms / 1000).add_done_callback(reply)
            return
        self._later(self._submit_after_activation(call), reply)

    def _refusal(self, app_id: str) -> NotPlacedHere | None:
        """Why this host will not run the app's call, if it will not.

        Once leaving, it runs no call; and for one heartbeat timeout after it
        let an app go to another host, it runs none of that app's: a front
        door that has not yet seen the change sends it again (to the new host,
        once it has), instead of this host activating a second writer.
        """
        if self._leaving:
            return NotPlacedHere(f"{self.name} is leaving")
        until = self._moved.get(app_id)
        if until is None:
            return None
        names = self._heartbeat.membership.names if self._heartbeat else []
        elsewhere = bool(names) and rendezvous(app_id, names) != self.name
        if elsewhere and time.monotonic() < until:
            return NotPlacedHere(f"app {app_id} moved to another host")
        del self._moved[app_id]  # expired, or placed here again
        return None

    def _later(
        self, work: Awaitable[Reply], reply: Callable[[asyncio.Future[Reply]], None]
    ) -> None:
        asyncio.ensure_future(work).add_done_callback(reply)

    async def _settled(self, app_id: str) -> Reply:
        closing = self._closing.get(app_id)
        if closing is not None:
            await asyncio.shield(closing)
        return Done()

    async def _submit_after_activation(self, call: Call) -> Reply:
        try:
            actor = await self.actor(call.app_id)
        except PiCloudError as e:
            return failure_of(e)
        return await actor.submit(call.command, call.timeout_ms / 1000)

    async def actor(self, app_id: str) -> AppActor:
        """The app's active actor, activating it if needed."""
        actor = self._actors.get(app_id)
        if actor is not None:
            return actor
        task = self._activating.get(app_id)
        if task is None:
            task = asyncio.create_task(self._activate(app_id))
            self._activating[app_id] = task
            task.add_done_callback(lambda _t: self._activating.pop(app_id, None))
        return await asyncio.shield(task)

    async def _activate(self, app_id: str) -> AppActor:
        assert self._db is not None  # noqa: S101  # start() ran
        closing = self._closing.get(app_id)
        if closing is not None:
            await closing
        store = self._db.app(app_id)
        record = await store.app()
        if record is None or record.id != app_id:
            raise NotFound(f"no app {app_id!r}")
        app = AppInfo(id=record.id, slug=record.slug, name=record.name)
        invoker = Invoker(app, self._settings, executor=self._scripts)
        actor = AppActor(
            app,
            store=store,
            settings=self._settings,
            invoker=invoker,
            watchdog=self._watchdog,
        )
        try:
            await actor.activate()
        except BaseException:
            invoker.close()  # its Lua runtime, which no actor will close
            raise
        self._watchdog.watch(actor.runtime)
        self._actors[app_id] = actor
        self._unchecked.add(app_id)
        while len(self._actors) > self._settings.app_host_max_active:
            self._passivate(next(iter(self._actors)))
        return actor

    # -- passivation ------------------------------------------------------------------

    def _passivate(self, app_id: str) -> None:
        actor = self._actors.pop(app_id, None)
        if actor is None:
            return
        self._watchdog.unwatch(actor.runtime)
        self._passivated += 1
        task = asyncio.create_task(actor.close())
        self._closing[app_id] = task
        task.add_done_callback(lambda _t: self._closing.pop(app_id, None))

    def _beat(self, names: list[str], changed: bool) -> None:
        """After each heartbeat: let go of the apps placed elsewhere now (all
        of them if the members changed, else those activated since the last
        beat, which a front door that had not yet seen the change sent)."""
        candidates = list(self._actors) if changed else list(self._unchecked)
        self._unchecked.clear()
        if self.name not in names:
            return
        moved = [
            app_id
            for app_id in candidates
            if app_id in self._actors and rendezvous(app_id, names) != self.name
        ]
        now = time.monotonic()
        if self._moved:
            self._moved = {a: t for a, t in self._moved.items() if t > now}
        until = now + self._settings.host_heartbeat_timeout_ms / 1000
        for app_id in moved:
            self._passivate(app_id)
            self._moved[app_id] = until
        if moved:
            log.info("%s: %d apps now placed on other hosts", self.name, len(moved))

    async def _sweep_idle(self) -> None:
        """Passivate the apps idle too long; then, if any app was passivated
        since the last sweep (idle, LRU, moved, deleted), give its memory back
        to the system (see release_memory: otherwise a host keeps the peak
        of its active apps for good)."""
        timeout = self._settings.app_idle_timeout_s
        while True:
            await asyncio.sleep(min(30.0, timeout / 2))
            idle_since = time.monotonic() - timeout
            for app_id, actor in list(self._actors.items()):
                if actor.last_used < idle_since:
                    self._passivate(app_id)
            if self._passivated:
                self._passivated = 0
                await asyncio.gather(*self._closing.values(), return_exceptions=True)
                release_memory()

    # -- the second sandbox layer -----------------------------------------------------

    def _record_offender(self, current: CurrentInvocation) -> None:
        """Runs on the watchdog thread just before the kill: record, durably."""
        path = offender_path(self._settings, self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = Offender(current.app_id, current.execution_id, time.time())
        with open(path, "wb") as f:  # fsync needs the file object
            f.write(msgspec.json.encode(record))
            f.flush()
            os.fsync(f.fileno())
        log.error(
            "app %s overran its hard deadline in %s; killing host %s",
            current.app_id,
            current.execution_id,
            self.name,
        )

    def stats(self) -> dict[str, object]:
        return {
            "name": self.name,
            "pid": os.getpid(),
            "active_apps": list(self._actors),
        }
