"""AppActor: the one writer of an app's stream ``app-{id}`` (plain Python, no Ray).

Guarantees:
- Ordering: commands run one at a time, in arrival order.
- Group commit: while one append is in flight, the next commands run against
  the state that includes it (speculatively); their events go in the next
  batch. No reply leaves before its events are durable.
- Failure: if an append fails, every command whose events were not yet
  durable gets a failure reply (StoreUnavailable when the database is down),
  and the actor reloads its state from the log (snapshot + tail) before
  running anything else. If the log cannot be read either, the actor is
  ``broken``: it answers every command with that error at once, without
  retrying on its own, and its host replaces it on the next command. A zombie
  writer is stopped by the stream's version key in Postgres.
- Poison: if Postgres refuses a value of the batch (UnstorableValue), the
  batch and the commands queued after it are appended one command at a
  time: only the commands whose own values are refused fail; the actor then
  reloads its state from the log.
- Idempotency: a command whose idempotency key this activation has answered
  gets the same reply; a key already in the log from an earlier activation
  gets ``Done(result=None)`` and changes nothing.
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
from datetime import datetime
from typing import Any, Literal, TypeGuard, cast

from pyrsistent import pmap

from picloud.actors._app_data import AppData, KvIntent, with_batch_prev
from picloud.actors._app_handlers import AppContext
from picloud.actors._cpu_budget import CpuBudget
from picloud.actors._outcome import Outcome, ReplyFn, done
from picloud.actors._what_if import WhatIfRunner
from picloud.actors.invoker import Invoker
from picloud.actors.protocol import Done, Reply, failure_of
from picloud.config import Settings
from picloud.domain import app as app_decide
from picloud.domain.commands import (
    AddRoute,
    AddTrigger,
    Command,
    DataOp,
    Deactivate,
    DeleteScript,
    Deliver,
    Expire,
    Invoke,
    MarkAbandoned,
    RecordHostKill,
    RemoveRoute,
    RemoveTrigger,
    ReplayDeadLetter,
    ResolveDeadLetter,
    SaveScript,
    Wake,
    WhatIf,
)
from picloud.domain.triggers import trigger_record
from picloud.errors import (
    ActorUnavailable,
    InvalidInput,
    NotFound,
    PiCloudError,
    StoreUnavailable,
    UnstorableValue,
)
from picloud.events import Event, EventMeta, RecordedEvent, utcnow
from picloud.events.app import InvocationRecorded
from picloud.events.app_state import AppState, evolve_app
from picloud.events.pending import Deliveries, Delivery, evolve_deliveries
from picloud.events.snapshot import decode_snapshot, encode_snapshot
from picloud.scripting import AppInfo, AppRuntime, Watchdog
from picloud.scripting.modules import prepare
from picloud.store import AppStore, Transaction

__all__ = ["AppActor", "app_stream"]

log = logging.getLogger(__name__)

_REMEMBERED_KEYS = 4_096
# How long a queue of commands that await nothing runs between turns of the
# event loop. Yielding after every command cost a host ~40 µs of CPU per
# request (measured: hello 186 -> 144 µs per invocation in process).
_YIELD_EVERY_S = 0.0005
_MAX_PENDING = 2_000  # commands waiting for the next append
_READ_BATCH = 1_000
_NO_DEADLINE = 365 * 86_400.0
# Commands that change the triggers wait until every pending append is durable,
# so each committed event is matched against the triggers in force before it.
# Wake waits too, so the wake-up time it rewrites is not raced by an append.
_DRAIN_FIRST = (AddTrigger, RemoveTrigger, DeleteScript, Wake)


def app_stream(app_id: str) -> str:
    return f"app-{app_id}"


@dataclass
class _Pending:
    outcome: Outcome
    future: asyncio.Future[Reply]
    key: str | None
    ticket: int | None


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
            app=app, settings=settings, invoker=invoker, data=self._data, budget=budget
        )
        self._what_if = WhatIfRunner(
            app,
            store=store,
            settings=settings,
            executor=invoker.runtime.executor,
            watchdog=watchdog,
        )
        self._state = AppState(app_id=app.id)
        self._deliveries: Deliveries = pmap()
        self._version = 0  # includes the events not yet durable
        self._durable = 0
        self._snapshot_version = 0
        self._wakeup: datetime | None = None
        self._inbox = _Inbox()
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # held while a command runs or state reloads
        self._answers: OrderedDict[str, asyncio.Future[Reply]] = OrderedDict()
        self._logged_keys: set[str] = set()
        self._queued: dict[str, int] = {}
        """Delivery id → the attempt queued. It stays until the fold moves the
        delivery on (done, or the next attempt), so a commit of other events in
        between cannot queue the same attempt twice."""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: datetime | None = None
        self._changed: set[str] = set()  # deliveries the batch being appended touched
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
    def deliveries(self) -> Deliveries:
        return self._deliveries

    @property
    def version(self) -> int:
        return self._durable

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
        self._state, self._deliveries = state, deliveries
        self._version = self._durable = version
        self._wakeup = _earliest(deliveries)
        self._queued.clear()
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
        """Finish the queued commands and pending appends, then release the runtime."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._inbox.worker is not None:
            await self._inbox.worker
        if self._flusher is not None:
            await self._flusher
        await self._what_if.close()
        self._ctx.invoker.close()

    # -- commands -----------------------------------------------------------------

    def submit(self, command: Command, timeout_s: float) -> asyncio.Future[Reply]:
        """Queue ``command``; the future gets its reply once its events are durable."""
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
            return self._what_if.submit(command, timeout_s, self._state)
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
                if isinstance(command, SaveScript):  # parse off the event loop
                    await prepare(command.source)
                if (
                    isinstance(command, _DRAIN_FIRST)
                    or len(self._pending) > _MAX_PENDING
                ):
                    await self._drain()
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

    async def _drain(self) -> None:
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

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
        try:
            outcome = await self._decide(command, deadline)
        except PiCloudError as e:
            future.set_result(failure_of(e))
            return
        if outcome is None:
            future.set_result(Done())
            return
        if not outcome.events:
            reply = outcome.reply
            future.set_result(reply([]) if callable(reply) else reply)
            return
        for event in outcome.events:
            if not isinstance(event, KvIntent):
                self._state = evolve_app(self._state, event)
        self._version += len(outcome.events)
        ticket = None if outcome.staged is None else self._data.stage(outcome.staged)
        self._pending.append(_Pending(outcome, future, key, ticket))
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _decide(self, command: Command, deadline: float) -> Outcome | None:
        meta = EventMeta(actor=command.actor, idempotency_key=command.idempotency_key)
        ctx, state = self._ctx, self._state
        match command:
            case Invoke():
                meta = EventMeta(
                    actor=command.actor,
                    idempotency_key=command.idempotency_key,
                    correlation_id=command.correlation_id or command.execution_id,
                )
                return await ctx.invoke(state, command, deadline, meta)
            case Deliver():
                pending = self._deliveries.get(command.delivery_id)
                return None if pending is None else await ctx.deliver(state, pending)
            case DataOp() | ReplayDeadLetter() | ResolveDeadLetter() | Expire():
                return await ctx.data_command(command, meta)
            case MarkAbandoned():
                return Outcome(ctx.invoker.abandoned(command.execution_id), meta, done)
            case Wake():
                await self._refresh_wakeup()
                return None
            case Deactivate():
                return None
            case SaveScript() | AddRoute() | AddTrigger():
                events = app_decide.decide_admin(state, command, self._settings)
                return Outcome(events, meta, self._entity_reply(events))
            case DeleteScript() | RemoveRoute() | RemoveTrigger() | RecordHostKill():
                events = app_decide.decide_admin(state, command, self._settings)
                return Outcome(events, meta, done)
        raise InvalidInput(f"unknown command {type(command).__name__}")

    def _entity_reply(self, events: list[Event]) -> ReplyFn:
        """Reply with the script, route or trigger the events made, as it is then."""
        event = events[-1]

        def reply(recorded: list[RecordedEvent]) -> Reply:
            state = self._state
            result: Any = None
            script_id = getattr(event, "script_id", None)
            route_id = getattr(event, "route_id", None)
            trigger_id = getattr(event, "trigger_id", None)
            if trigger_id is not None and trigger_id in state.triggers:
                result = trigger_record(state, state.triggers[trigger_id], event.at)
            elif route_id is not None and route_id in state.routes:
                result = app_decide.route_record(state, state.routes[route_id])
            elif script_id is not None and script_id in state.scripts:
                result = app_decide.script_record(state, state.scripts[script_id])
            return done(recorded, result)

        return reply

    # -- deliveries -----------------------------------------------------------------

    def _schedule_due(self, only: set[str] | None = None) -> None:
        """Queue the due deliveries not yet queued, in log order, and arm the
        timer for the next one: all of them, or ``only`` the ids a batch touched
        (so a long backlog is not rescanned on every commit)."""
        if self.closed or self.gone or self.broken is not None:
            return
        if only is None:
            for gone in self._queued.keys() - self._deliveries.keys():
                del self._queued[gone]
            candidates = list(self._deliveries.values())
        else:
            candidates = []
            for delivery_id in only:
                delivery = self._deliveries.get(delivery_id)
                if delivery is None:
                    self._queued.pop(delivery_id, None)
                else:
                    candidates.append(delivery)
        now = utcnow()
        soonest: datetime | None = None
        for delivery in sorted(candidates, key=_log_order):
            if self._queued.get(delivery.id) == delivery.attempt:
                continue
            if delivery.due_at is None or delivery.due_at <= now:
                self._queued[delivery.id] = delivery.attempt
                self.submit(Deliver(delivery_id=delivery.id), _NO_DEADLINE)
            elif soonest is None or delivery.due_at < soonest:
                soonest = delivery.due_at
        self._arm(soonest, now, replace=only is None)

    async def _refresh_wakeup(self) -> None:
        """Set the stored wake-up time to the exact earliest due delivery. The
        appends only ever lower it, so a finished delivery leaves it early, and
        the scheduler would wake the app for nothing until this runs."""
        exact = _earliest(self._deliveries)
        if exact != self._wakeup:
            await self._store.set_wakeup(exact)
            self._wakeup = exact

    def _arm(self, due: datetime | None, now: datetime, *, replace: bool) -> None:
        """Run a full scan at ``due``: instead of the timer set (``replace``), or
        only if earlier than it."""
        if not replace and (due is None or (self._timer_at and self._timer_at <= due)):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, due
        if due is not None:
            delay = max(0.0, (due - now).total_seconds())
            self._timer = asyncio.get_running_loop().call_later(
                delay, self._schedule_due
            )

    # -- appends ------------------------------------------------------------------

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._append(batch)
                except Exception:  # a task root: no reply may be left hanging
                    log.exception("append to %s failed unexpectedly", self.stream)
                    # The details stay in the log: a client learns no internals.
                    error = ActorUnavailable("the write was not recorded; retry")
                    await self._recover(batch, error)
        finally:
            self._flusher = None

    async def _append(self, batch: list[_Pending]) -> None:
        items = [e for p in batch for e in p.outcome.events]
        metas = [p.outcome.meta for p in batch for _ in p.outcome.events]
        try:
            path = self._one_statement_path(items)
            if path == "runs":
                # Route runs that wrote nothing: no projection, no delivery moves,
                # so one statement that commits by itself (the hot path).
                runs = cast("list[Event]", items)
                recorded = await self._log.append(
                    self.stream, self._durable, runs, metas
                )
                deliveries = self._deliveries
            elif path == "kv_sets":
                # Runs and the sets they made, which no trigger takes: one
                # statement with their projection (the hot write path).
                events, stored_prev = with_batch_prev(items)
                recorded = await self._store.append_kv_sets(
                    self.stream,
                    self._durable,
                    events,
                    metas,
                    stored_prev=stored_prev,
                )
                deliveries = self._deliveries
            else:
                recorded, deliveries = await self._append_with_projections(items, metas)
        except UnstorableValue as e:
            log.warning("append to %s refused a value (%s): one by one", self.stream, e)
            await self._isolate(batch)
            return
        except PiCloudError as e:
            log.warning(
                "append to %s failed (%s); reloading from the log", self.stream, e
            )
            await self._recover(batch, e)
            return
        self._durable += len(recorded)
        self._deliveries = deliveries
        self._data.committed([p.ticket for p in batch if p.ticket is not None])
        start = 0
        for item in batch:
            count = len(item.outcome.events)
            mine, start = recorded[start : start + count], start + count
            reply = item.outcome.reply
            item.future.set_result(reply(mine) if callable(reply) else reply)
        changed, self._changed = self._changed, set()
        if changed:
            self._schedule_due(changed)
        if self._durable - self._snapshot_version >= self._settings.app_snapshot_every:
            await self._snapshot()

    def _one_statement_path(
        self, items: list[Event | KvIntent]
    ) -> Literal["runs", "kv_sets"] | None:
        """Which one-statement append takes ``items``: ``runs`` (route runs that
        wrote nothing), ``kv_sets`` (route runs and KV sets no trigger takes:
        no delivery moves, no projection but the entries), or None (the
        general append with projections)."""
        path: Literal["runs", "kv_sets"] = "runs"
        for item in items:
            if isinstance(item, KvIntent):
                collection = item.event.collection
                if any(
                    t.takes("kv", "set", collection)
                    for t in self._state.triggers.values()
                ):
                    return None
                path = "kv_sets"
            elif not _only_recorded(item):
                return None
        return path

    async def _append_with_projections(
        self, items: list[Event | KvIntent], metas: list[EventMeta]
    ) -> tuple[list[RecordedEvent], Deliveries]:
        async with self._log.transaction() as tx:
            events = await self._data.resolve(tx, items)
            recorded = await tx.append(self.stream, self._durable, events, metas)
            await tx.project_app(recorded)
            deliveries = await self._track_deliveries(tx, recorded)
        return recorded, deliveries

    async def _track_deliveries(
        self, tx: Transaction, recorded: list[RecordedEvent]
    ) -> Deliveries:
        """The pending deliveries after the batch, and the app's wake-up time,
        written in the batch's own transaction."""
        deliveries, changed = self._deliveries, self._changed
        for r in recorded:
            deliveries = evolve_deliveries(deliveries, self._state.triggers, r, changed)
        # Never later than the earliest due delivery (a crash must not delay
        # work); lowering it needs only the touched ones, no scan of a backlog.
        wakeup = None if not deliveries else self._wakeup
        for delivery_id in changed:
            delivery = deliveries.get(delivery_id)
            if delivery is not None:
                due = delivery.due_at or delivery.first_attempt_at
                wakeup = due if wakeup is None else min(wakeup, due)
        if wakeup != self._wakeup:
            await tx.set_wakeup(self.app.id, wakeup)
            self._wakeup = wakeup
        return deliveries

    async def _recover(self, batch: list[_Pending], error: PiCloudError) -> None:
        """Fail every reply not yet durable and reload the state from the log;
        if the log cannot be read (the database is down), the actor is broken."""
        async with self._lock:  # no command runs on the speculative state meanwhile
            failed, self._pending = batch + self._pending, []
            for item in failed:
                self._fail(item, _not_recorded(error))
            self._data.reset()
            self._changed.clear()
            await self._reload()

    async def _reload(self) -> None:
        """Activate again from the log; if it cannot be read (the database is
        down), the actor is broken."""
        try:
            await self.activate()
        except NotFound:
            log.info("app %s was deleted; its actor stops", self.app.id)
        except PiCloudError as e:
            # No retry from here: during an outage that would spin. The
            # host activates a new actor when the next command comes.
            log.warning("app %s cannot reload (%s); its actor stops", self.app.id, e)
            self.broken = e

    async def _isolate(self, batch: list[_Pending]) -> None:
        """Append each command of ``batch`` and of the queue behind it alone,
        in order: a command whose values Postgres refuses fails by itself,
        the others are committed. Then reload the state from the log, which
        the failed commands' events had run ahead of."""
        async with self._lock:  # no command runs on the speculative state meanwhile
            items, self._pending = batch + self._pending, []
            self._data.reset()
            for n, item in enumerate(items):
                try:
                    recorded, deliveries = await self._append_with_projections(
                        list(item.outcome.events),
                        [item.outcome.meta] * len(item.outcome.events),
                    )
                except UnstorableValue as e:
                    self._fail(item, InvalidInput(f"a value cannot be stored: {e}"))
                    continue
                except PiCloudError as e:
                    for rest in items[n:]:
                        self._fail(rest, _not_recorded(e))
                    break
                self._durable += len(recorded)
                self._deliveries = deliveries
                reply = item.outcome.reply
                item.future.set_result(reply(recorded) if callable(reply) else reply)
            self._changed.clear()
            await self._reload()

    def _fail(self, item: _Pending, error: PiCloudError) -> None:
        if item.key is not None:
            self._answers.pop(item.key, None)
        if not item.future.done():
            item.future.set_result(failure_of(error))

    async def _snapshot(self) -> None:
        if self._version != self._durable:
            return  # speculative events pending: the state is ahead; next time
        version = self._durable
        data = encode_snapshot(self._state, self._deliveries, version)
        try:
            await self._store.save_snapshot(self.stream, version, data)
        except PiCloudError as e:
            log.warning("snapshot of %s failed: %s", self.stream, e)
            return
        self._snapshot_version = version


def _not_recorded(error: PiCloudError) -> PiCloudError:
    """What a command whose write failed with ``error`` answers: the database's
    unavailability as it is, anything else as ours (a zombie writer's conflict)."""
    if isinstance(error, StoreUnavailable):
        return error
    return ActorUnavailable("the write was not recorded; retry")


def _only_recorded(item: Event | KvIntent) -> TypeGuard[InvocationRecorded]:
    return type(item) is InvocationRecorded and item.delivery_id is None


def _log_order(delivery: Delivery) -> int:
    return delivery.seq


def _earliest(deliveries: Deliveries) -> datetime | None:
    """When the app must next be awake for its deliveries (None: never)."""
    times = [d.due_at or d.first_attempt_at for d in deliveries.values()]
    return min(times) if times else None
