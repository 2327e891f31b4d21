"""AppActor: the one writer of an app's stream ``app-{id}`` (plain Python, no Ray).

Guarantees:
- Ordering: commands run one at a time, in arrival order.
- Group commit: while one append is in flight, the next commands run against
  the state that includes it (speculatively); their events go in the next
  batch. No reply leaves before its events are durable, nor before every
  write its command could have observed is durable.
- Read-only runs: a route run that wrote nothing answers as soon as every
  write it could have observed is durable (at once when none is pending);
  its execution record joins the next batch and nobody waits for it. A crash
  can lose the records of read-only runs of the last commit interval, never
  an acknowledged write nor a value a reply showed. A zombie writer may
  answer read-only runs until its next append finds the stream moved on.
- Failure: if an append fails, every command whose events were not yet
  durable gets a failure reply (StoreUnavailable when the database is down),
  and so does every reply still waiting for them; an answered read-only
  run's lost record changes nothing for its caller. The actor reloads its
  state from the log (snapshot + tail) before running anything else. If the
  log cannot be read either, the actor is ``broken``: it answers every
  command with that error at once, without retrying on its own, and its host
  replaces it on the next command. A zombie writer is stopped by the
  stream's version key in Postgres.
- Poison: if Postgres refuses a value of the batch (UnstorableValue), the
  batch and the commands queued after it are appended one command at a
  time: only the commands whose own values are refused fail (and the replies
  that waited for them); the actor then reloads its state from the log.
- Idempotency: a command whose idempotency key this activation has answered
  gets the same reply; a key already in the log from an earlier activation
  gets ``Done(result=None)`` and changes nothing.
- Close (passivation): the queued commands run and every pending event,
  read-only runs' records included, is appended before the runtime is freed.
- What-if (actors._what_if): a WhatIf command runs beside the queue, reads
  only the log, and appends nothing.
- Triggers (SPEC.md §4): the actor consumes its own committed events. The
  pending deliveries are a fold of the log (events.deliveries), updated in the
  append's transaction together with the app's wake-up time, so a delivery is
  never lost: after a crash the fold finds it again, and the scheduler wakes
  the app when it is due. Delivery is at least once, in log order, one at a
  time; retries wait on a timer, with no polling on the commit → delivery path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from pyrsistent import pmap

from picloud.actors._app_data import AppData, KvIntent
from picloud.actors._app_handlers import AppContext
from picloud.actors._append_paths import Appender
from picloud.actors._cpu_budget import CpuBudget
from picloud.actors._due import DueDeliveries
from picloud.actors._group_commit import (
    Answers,
    GroupCommit,
    Pending,
    read_only,
    reply_of,
)
from picloud.actors._outcome import Outcome, done
from picloud.actors._timed import TimedWork
from picloud.actors._what_if import WhatIfRunner
from picloud.actors.invoker import Invoker
from picloud.actors.protocol import Done, Reply, failure_of
from picloud.config import Settings
from picloud.domain.commands import (
    AddTrigger,
    Command,
    DeleteScript,
    Deploy,
    ExpireKeys,
    FireSchedules,
    RemoveTrigger,
    SaveScript,
    Settle,
    Wake,
    WhatIf,
)
from picloud.domain.schedules import decide_firings
from picloud.errors import ActorUnavailable, NotFound, PiCloudError
from picloud.events import EventMeta, utcnow
from picloud.events.app_state import AppState, evolve_app
from picloud.events.pending import Deliveries, evolve_deliveries
from picloud.events.snapshot import decode_snapshot, encode_snapshot
from picloud.scripting import AppInfo, AppRuntime, Watchdog
from picloud.scripting.modules import prepare
from picloud.store import AppStore

__all__ = ["AppActor", "app_stream"]

log = logging.getLogger(__name__)

_REMEMBERED_KEYS = 4_096
# How long a queue of commands that await nothing runs between turns of the
# event loop. Yielding after every command cost a host ~40 µs of CPU per
# request (measured: hello 186 -> 144 µs per invocation in process).
_YIELD_EVERY_S = 0.0005
_MAX_PENDING = 2_000  # commands waiting for the next append
_READ_BATCH = 1_000
# Commands that change the triggers wait until every pending append is durable,
# so each committed event is matched against the triggers in force before it.
# Wake waits too, so the wake-up time it rewrites is not raced by an append;
# Settle is that wait.
_DRAIN_FIRST = (AddTrigger, RemoveTrigger, DeleteScript, Deploy, Wake, Settle)


def app_stream(app_id: str) -> str:
    return f"app-{app_id}"


@dataclass
class _Inbox:
    queue: asyncio.Queue[tuple[Command, float, asyncio.Future[Reply]]] = field(
        default_factory=asyncio.Queue
    )
    worker: asyncio.Task[None] | None = None


class AppActor:
    """Decides, records and applies the commands of one app; see module docstring."""

    def __init__(
        self,
        app: AppInfo,
        *,
        store: AppStore,
        settings: Settings,
        invoker: Invoker,
        watchdog: Watchdog | None = None,
    ) -> None:
        """``watchdog``: the host's, which watches what-if runs' runtimes too."""
        self.app = app
        self.stream = app_stream(app.id)
        self._store = store
        self._log = store.log
        self._settings = settings
        self._data = AppData(store, cache_entries=settings.app_kv_cache_entries)
        budget = CpuBudget(
            rate_ms_per_s=settings.app_cpu_budget_ms_per_s,
            burst_ms=settings.app_cpu_burst_ms,
        )
        self._ctx = AppContext(
            app=app,
            settings=settings,
            invoker=invoker,
            data=self._data,
            budget=budget,
            state=lambda: self._state,
        )
        self._what_if = WhatIfRunner(
            app,
            store=store,
            settings=settings,
            executor=invoker.runtime.executor,
            watchdog=watchdog,
        )
        self._state = AppState(app_id=app.id)
        self.deliveries: Deliveries = pmap()
        """The pending deliveries, as of the durable version."""
        self._timed = TimedWork(state=lambda: self._state, submit=self.submit)
        self._due = DueDeliveries(
            store, submit=self.submit, rescan=self._schedule_due, timed=self._timed
        )
        self._lock = asyncio.Lock()  # held while a command runs or state reloads
        self._answers: Answers = OrderedDict()
        self._commits = GroupCommit(
            self,
            Appender(store, self.stream, data=self._data, due=self._due),
            data=self._data,
            due=self._due,
            answers=self._answers,
            lock=self._lock,
            linger_s=settings.record_linger_ms / 1000,
        )
        self._snapshot_version = 0
        self._inbox = _Inbox()
        self._logged_keys: set[str] = set()
        self.last_used = time.monotonic()
        self.closed = False
        self.gone = False
        """The app was deleted: every command answers NotFound."""
        self.broken: PiCloudError | None = None
        """The state could not be reloaded after a failed append: every
        command answers this error; the host replaces the actor."""

    @property
    def state(self) -> AppState:
        return self._state

    @property
    def version(self) -> int:
        """The stream's durable version."""
        return self._commits.mark.durable

    @property
    def runtime(self) -> AppRuntime:
        return self._ctx.invoker.runtime

    # -- lifecycle ------------------------------------------------------------------

    async def activate(self) -> None:
        """Load the state from the newest snapshot and the log's tail, then queue
        the deliveries that are due.

        Raises:
            NotFound: the app was deleted (the actor is then ``gone``).
        """
        if await self._store.app() is None:
            self.gone = True
            raise NotFound(f"no app {self.app.id!r}")
        state, version = AppState(app_id=self.app.id), 0
        deliveries: Deliveries = pmap()
        loaded = await self._load_snapshot()
        if loaded is not None:
            state, deliveries, version = loaded
        self._snapshot_version = version
        while batch := await self._log.read_stream(self.stream, version, _READ_BATCH):
            for recorded in batch:
                state = evolve_app(state, recorded.event)
                deliveries = evolve_deliveries(deliveries, state.triggers, recorded)
                if recorded.meta.idempotency_key:
                    self._logged_keys.add(recorded.meta.idempotency_key)
            version = batch[-1].version
        self._state, self.deliveries = state, deliveries
        self._commits.mark.reset(version)
        self._timed.reset(await self._store.next_kv_expiry())
        self._due.reset(deliveries)
        self._schedule_due()

    async def _load_snapshot(self) -> tuple[AppState, Deliveries, int] | None:
        """The newest snapshot, if it can be trusted. A snapshot is only an
        optimisation: one this version cannot read, or one ahead of the log
        (a database restored from a backup), is ignored, logged, and the
        state is folded from the whole log."""
        snapshot = await self._store.snapshot(self.stream)
        if snapshot is None:
            return None
        loaded = decode_snapshot(self.app.id, snapshot)
        if loaded is None:
            log.warning("snapshot of %s is unreadable; replaying its log", self.stream)
            return None
        head = await self._log.stream_version(self.stream)
        if loaded[2] > head:
            log.warning(
                "snapshot of %s is at version %d, past the log's %d; replaying its log",
                self.stream,
                loaded[2],
                head,
            )
            return None
        return loaded

    async def close(self) -> None:
        """Finish the queued commands and pending appends (the records of
        read-only runs too), then release the runtime."""
        self.closed = True
        self._due.stop()
        if self._inbox.worker is not None:
            await self._inbox.worker
        await self._commits.settled()
        await self._what_if.close()
        self._ctx.invoker.close()

    async def settled(self) -> None:
        """Return once every event decided so far is durable (or failed)."""
        await self._commits.settled()

    # -- commands -----------------------------------------------------------------

    def submit(self, command: Command, timeout_s: float) -> asyncio.Future[Reply]:
        """Queue ``command``; the future gets its reply once its events, and
        the writes it could have observed, are durable."""
        self.last_used = time.monotonic()
        loop = asyncio.get_running_loop()
        key = command.idempotency_key
        if key is not None and key in self._answers:
            return self._answers[key]
        future: asyncio.Future[Reply] = loop.create_future()
        if self.gone or self.closed:
            error = NotFound(f"no app {self.app.id!r}") if self.gone else None
            future.set_result(
                failure_of(error or ActorUnavailable("the app is being passivated"))
            )
            return future
        if isinstance(command, WhatIf):  # beside the queue, never remembered
            return self._what_if.submit(
                command, timeout_s, self._state, self._commits.settled
            )
        if key is not None:
            self._answers[key] = future
            while len(self._answers) > _REMEMBERED_KEYS:
                self._answers.popitem(last=False)
        self._inbox.queue.put_nowait((command, loop.time() + timeout_s, future))
        if self._inbox.worker is None:
            self._inbox.worker = loop.create_task(self._work(), name=self.stream)
        return future

    async def _work(self) -> None:
        queue = self._inbox.queue
        yielded = time.monotonic()
        try:
            while not queue.empty():
                command, deadline, future = queue.get_nowait()
                for source in _sources(command):  # parse off the event loop
                    await prepare(source)
                if (
                    isinstance(command, _DRAIN_FIRST)
                    or len(self._commits.pending) > _MAX_PENDING
                ):
                    await self._commits.settled()
                async with self._lock:
                    await self._run(command, deadline, future)
                # A command that awaits nothing (a script without SDK calls) runs
                # to the end without yielding; let the append in flight read its
                # answers now and then, or a long queue holds up its commit. Not
                # after every command: each yield is a turn of the event loop.
                if time.monotonic() - yielded >= _YIELD_EVERY_S:
                    await asyncio.sleep(0)
                    yielded = time.monotonic()
        finally:
            self._inbox.worker = None

    async def _run(
        self, command: Command, deadline: float, future: asyncio.Future[Reply]
    ) -> None:
        if self.broken is not None:
            future.set_result(failure_of(self.broken))
            return
        key = command.idempotency_key
        if key is not None and key in self._logged_keys:
            future.set_result(Done())
            return
        commits = self._commits
        try:
            outcome = await self._decide(command, deadline)
        except PiCloudError as e:
            # It may depend on the state (a name taken by a pending write).
            commits.mark.reply(future, failure_of(e), key)
            return
        if outcome is None:
            future.set_result(Done())
            return
        if not outcome.events or read_only(outcome):
            # A reply that needs no place in the log: sent once what the
            # command could observe is durable. A read-only run's record
            # joins the next batch, and nobody waits for it.
            commits.mark.reply(future, reply_of(outcome, []), key)
            if outcome.events:
                commits.queue(Pending(outcome, None, key, None), writes=False)
            return
        for event in outcome.events:
            if not isinstance(event, KvIntent):
                self._state = evolve_app(self._state, event)
        ticket = None if outcome.staged is None else self._data.stage(outcome.staged)
        commits.queue(Pending(outcome, future, key, ticket), writes=True)

    async def _decide(self, command: Command, deadline: float) -> Outcome | None:
        """The actor's own commands (its timers' work), else the context's."""
        match command:
            case Wake():
                await self._due.refresh_wakeup(self.deliveries)
                self._schedule_due(set())  # a schedule's time may have come
                return None
            case FireSchedules():
                self._timed.firing_queued = False
                meta = EventMeta(
                    actor=command.actor, idempotency_key=command.idempotency_key
                )
                return Outcome(decide_firings(self._state, utcnow()), meta, done)
            case ExpireKeys():
                self._timed.expiry_queued = False
                meta = EventMeta(
                    actor=command.actor, idempotency_key=command.idempotency_key
                )
                outcome, self._timed.next_expiry = await self._ctx.expire_keys(meta)
                self._schedule_due(set())  # the timer, for the next one
                return outcome
        return await self._ctx.decide(
            command, deadline, state=self._state, deliveries=self.deliveries
        )

    def _schedule_due(self, only: set[str] | None = None) -> None:
        """Queue the deliveries that are due (all, or ``only`` these ids)."""
        if self.closed or self.gone or self.broken is not None:
            return
        self._due.schedule(self.deliveries, only)

    # -- for the group commit ---------------------------------------------------------

    async def appended(self, changed: set[str]) -> None:
        """A batch is durable: queue the deliveries it made due, and take a
        snapshot when enough events passed since the last."""
        if changed or self._timed.moved:
            self._timed.moved = False
            self._schedule_due(changed)  # and arm the timer for timed work
        since = self._commits.mark.durable - self._snapshot_version
        if since >= self._settings.app_snapshot_every:
            await self._snapshot()

    async def reload(self) -> None:
        """Activate again from the log (after a failed append); if it cannot
        be read (the database is down), the actor is broken."""
        try:
            await self.activate()
        except NotFound:
            log.info("app %s was deleted; its actor stops", self.app.id)
        except PiCloudError as e:
            # No retry from here: during an outage that would spin. The
            # host activates a new actor when the next command comes.
            log.warning("app %s cannot reload (%s); its actor stops", self.app.id, e)
            self.broken = e

    async def _snapshot(self) -> None:
        mark = self._commits.mark
        if not mark.settled:
            return  # writes pending: the state is ahead of the log; next time
        # Only read-only runs' records may be pending, and they change no
        # state: the state is the durable version's.
        data = encode_snapshot(self._state, self.deliveries, mark.durable)
        try:
            await self._store.save_snapshot(self.stream, mark.durable, data)
        except PiCloudError as e:
            log.warning("snapshot of %s failed: %s", self.stream, e)
            return
        self._snapshot_version = mark.durable


def _sources(command: Command) -> list[str]:
    """The Lua sources a command saves (parsed in a thread before it runs)."""
    if isinstance(command, SaveScript):
        return [command.source]
    if isinstance(command, Deploy):
        return [script.source for script in command.desired.scripts]
    return []
