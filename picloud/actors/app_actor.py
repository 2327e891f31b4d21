"""AppActor: the one writer of an app's stream ``app-{id}`` (plain Python, no Ray).

Guarantees:
- Ordering: commands run one at a time, in arrival order.
- Group commit: while one append is in flight, the next commands run against
  the state that includes it (speculatively); their events go in the next
  batch. No reply leaves before its events are durable.
- Failure: if an append fails, every command whose events were not yet
  durable gets a failure reply, and the actor reloads its state from the log
  (snapshot + tail) before running anything else. A zombie writer is stopped
  by the stream's version key in Postgres.
- Idempotency: a command whose idempotency key this activation has answered
  gets the same reply; a key already in the log from an earlier activation
  gets ``Done(result=None)`` and changes nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from picloud.access import SCRIPT_DEFAULT, Capability
from picloud.actors import app_decide
from picloud.actors._remote import failure_of
from picloud.actors.app_data import AppData, KvIntent, Staged
from picloud.actors.invoker import Invoker
from picloud.actors.protocol import (
    AddRoute,
    Command,
    DataOp,
    Deactivate,
    DeleteScript,
    Done,
    HttpReply,
    Invoke,
    MarkAbandoned,
    RecordHostKill,
    RemoveRoute,
    Reply,
    RunAccepted,
    SaveScript,
)
from picloud.actors.sdk import DataAccess
from picloud.config import Settings
from picloud.errors import (
    ActorUnavailable,
    CommandTimeout,
    InvalidInput,
    NotFound,
    PiCloudError,
    SdkCallError,
)
from picloud.events import Event, EventMeta, RecordedEvent, utcnow
from picloud.events.app import InvocationAccepted, InvocationRecorded
from picloud.events.app_state import (
    AppState,
    decode_snapshot,
    encode_snapshot,
    evolve_app,
)
from picloud.scripting import AppInfo, AppRuntime
from picloud.store import EventLog
from picloud.store.apps import get_app
from picloud.store.projections import project_app
from picloud.store.snapshots import load_snapshot, save_snapshot

__all__ = ["AppActor", "app_stream"]

log = logging.getLogger(__name__)

_REMEMBERED_KEYS = 4_096
_MAX_PENDING = 2_000  # commands waiting for the next append
_READ_BATCH = 1_000
_NO_DEADLINE = 365 * 86_400.0
_DATA_ADMIN = frozenset(
    {
        Capability.KV_READ,
        Capability.KV_WRITE,
        Capability.DOCS_READ,
        Capability.DOCS_WRITE,
    }
)


def app_stream(app_id: str) -> str:
    return f"app-{app_id}"


@dataclass
class _Outcome:
    """What one command produced: events to append and how to reply once durable.

    ``events`` may hold KvIntents (resolved to KvSet at append time); ``staged``
    is the command's data writes, visible to later commands at once.
    """

    events: Sequence[Event | KvIntent]
    meta: EventMeta
    reply: Reply | Callable[[list[RecordedEvent]], Reply]
    after_commit: Callable[[], None] | None = None
    staged: Staged | None = None


@dataclass
class _Pending:
    outcome: _Outcome
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
        self, app: AppInfo, *, log: EventLog, settings: Settings, invoker: Invoker
    ) -> None:
        self.app = app
        self.stream = app_stream(app.id)
        self._log = log
        self._settings = settings
        self._invoker = invoker
        self._data = AppData(
            app.id, log.pool, cache_entries=settings.app_kv_cache_entries
        )
        self._granted = SCRIPT_DEFAULT
        self._state = AppState(app_id=app.id)
        self._version = 0  # includes the events not yet durable
        self._durable = 0
        self._snapshot_version = 0
        self._inbox = _Inbox()
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # held while a command runs or state reloads
        self._answers: OrderedDict[str, asyncio.Future[Reply]] = OrderedDict()
        self._logged_keys: set[str] = set()
        self.last_used = time.monotonic()
        self.closed = False
        self.gone = False
        """The app was deleted: every command answers NotFound."""

    @property
    def state(self) -> AppState:
        return self._state

    @property
    def version(self) -> int:
        return self._durable

    @property
    def runtime(self) -> AppRuntime:
        return self._invoker.runtime

    # -- lifecycle ------------------------------------------------------------------

    async def activate(self) -> None:
        """Load the control state from the newest snapshot and the log's tail.

        Raises:
            NotFound: the app was deleted (the actor is then ``gone``).
        """
        if await get_app(self._log.pool, self.app.id) is None:
            self.gone = True
            raise NotFound(f"no app {self.app.id!r}")
        state, version = AppState(app_id=self.app.id), 0
        snapshot = await load_snapshot(self._log.pool, self.stream)
        if snapshot is not None:
            state, version = decode_snapshot(self.app.id, snapshot)
        self._snapshot_version = version
        while batch := await self._log.read_stream(self.stream, version, _READ_BATCH):
            for recorded in batch:
                state = evolve_app(state, recorded.event)
                if recorded.meta.idempotency_key:
                    self._logged_keys.add(recorded.meta.idempotency_key)
            version = batch[-1].version
        self._state, self._version, self._durable = state, version, version
        for accepted in state.pending_async.values():
            self._run_accepted(accepted)

    async def close(self) -> None:
        """Finish the queued commands and pending appends, then release the runtime."""
        self.closed = True
        if self._inbox.worker is not None:
            await self._inbox.worker
        if self._flusher is not None:
            await self._flusher
        self._invoker.close()

    # -- commands -----------------------------------------------------------------

    def submit(self, command: Command, timeout_s: float) -> asyncio.Future[Reply]:
        """Queue ``command``; the future gets its reply once its events are durable."""
        self.last_used = time.monotonic()
        loop = asyncio.get_running_loop()
        key = command.idempotency_key
        if key is not None and key in self._answers:
            return self._answers[key]
        future: asyncio.Future[Reply] = loop.create_future()
        if self.gone:
            future.set_result(failure_of(NotFound(f"no app {self.app.id!r}")))
            return future
        if self.closed:
            future.set_result(
                failure_of(ActorUnavailable("the app is being passivated"))
            )
            return future
        if key is not None:
            self._remember(key, future)
        self._inbox.queue.put_nowait((command, loop.time() + timeout_s, future))
        if self._inbox.worker is None:
            self._inbox.worker = loop.create_task(
                self._work(), name=f"app-{self.app.id}"
            )
        return future

    def _remember(self, key: str, future: asyncio.Future[Reply]) -> None:
        self._answers[key] = future
        while len(self._answers) > _REMEMBERED_KEYS:
            self._answers.popitem(last=False)

    async def _work(self) -> None:
        queue = self._inbox.queue
        try:
            while not queue.empty():
                command, deadline, future = queue.get_nowait()
                if len(self._pending) > _MAX_PENDING and self._flusher is not None:
                    await asyncio.shield(self._flusher)  # back-pressure
                async with self._lock:
                    await self._run(command, deadline, future)
        finally:
            self._inbox.worker = None

    async def _run(
        self, command: Command, deadline: float, future: asyncio.Future[Reply]
    ) -> None:
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

    async def _decide(self, command: Command, deadline: float) -> _Outcome | None:
        meta = EventMeta(actor=command.actor, idempotency_key=command.idempotency_key)
        match command:
            case Invoke():
                return await self._invoke(command, deadline, meta)
            case DataOp():
                return await self._data_op(command, meta)
            case RunAccepted():
                return await self._run_pending(command, meta)
            case MarkAbandoned():
                events = self._invoker.abandoned(command.execution_id)
                return _Outcome(events, meta, _done)
            case Deactivate():
                return None
            case SaveScript() | AddRoute():
                events = app_decide.decide_admin(self._state, command, self._settings)
                return _Outcome(events, meta, self._entity_reply(events))
            case DeleteScript() | RemoveRoute() | RecordHostKill():
                events = app_decide.decide_admin(self._state, command, self._settings)
                return _Outcome(events, meta, _done)
        raise InvalidInput(f"unknown command {type(command).__name__}")

    def _entity_reply(
        self, events: list[Event]
    ) -> Callable[[list[RecordedEvent]], Reply]:
        """Reply with the script or route the events made, as the state has it then."""
        event = events[-1]

        def reply(recorded: list[RecordedEvent]) -> Reply:
            state = self._state
            result: Any = None
            script_id = getattr(event, "script_id", None)
            route_id = getattr(event, "route_id", None)
            if route_id is not None and route_id in state.routes:
                result = app_decide.route_record(state, state.routes[route_id])
            elif script_id is not None and script_id in state.scripts:
                result = app_decide.script_record(state, state.scripts[script_id])
            return _done(recorded, result)

        return reply

    async def _invoke(
        self, command: Invoke, deadline: float, meta: EventMeta
    ) -> _Outcome:
        meta = EventMeta(
            actor=command.actor,
            idempotency_key=command.idempotency_key,
            correlation_id=command.correlation_id or command.execution_id,
        )
        route = self._state.routes.get(command.route_id)
        if route is None:
            return _Outcome([], meta, _not_found("the route no longer exists"))
        if asyncio.get_running_loop().time() > deadline:
            events = self._invoker.abandoned(command.execution_id)
            return _Outcome(
                events, meta, failure_of(CommandTimeout("the caller gave up"))
            )
        if route.dispatch_mode == "async":
            accepted = InvocationAccepted(
                at=utcnow(),
                app_id=self.app.id,
                execution_id=command.execution_id,
                route_id=route.id,
                script_id=route.script_id,
                request=command.request,
            )
            return _Outcome(
                [accepted],
                meta,
                _accepted(command.execution_id),
                after_commit=lambda: self._run_accepted(accepted),
            )
        access = self._access()
        recorded, reply = await self._invoker.run_route(
            self._state, route, command, access
        )
        return self._with_writes(recorded, access, meta, reply)

    async def _data_op(self, command: DataOp, meta: EventMeta) -> _Outcome:
        """An admin's KV or document operation, through the SDK's own code."""
        access = DataAccess(self._data, granted=_DATA_ADMIN, settings=self._settings)
        try:
            result = await access(command.op, command.args)
        except SdkCallError as e:
            raise InvalidInput(e.message) from None
        events = access.staged.events
        reply = functools.partial(_done, result=result)
        return _Outcome(events, meta, reply, staged=access.staged if events else None)

    def _access(self) -> DataAccess:
        return DataAccess(self._data, granted=self._granted, settings=self._settings)

    def _with_writes(
        self,
        recorded: InvocationRecorded,
        access: DataAccess,
        meta: EventMeta,
        reply: Reply | Callable[[list[RecordedEvent]], Reply],
    ) -> _Outcome:
        """The invocation's outcome: its writes only if it succeeded (atomicity)."""
        if recorded.status != "ok" or not access.staged.events:
            return _Outcome([recorded], meta, reply)
        events: list[Event | KvIntent] = [*access.staged.events, recorded]
        return _Outcome(events, meta, reply, staged=access.staged)

    def _run_accepted(self, accepted: InvocationAccepted) -> None:
        """Queue the run of an async invocation that is durably accepted."""
        if not self.closed:
            self.submit(RunAccepted(execution_id=accepted.execution_id), _NO_DEADLINE)

    async def _run_pending(
        self, command: RunAccepted, meta: EventMeta
    ) -> _Outcome | None:
        accepted = self._state.pending_async.get(command.execution_id)
        if accepted is None:
            return None  # already run (a duplicate from a re-activation)
        meta = EventMeta(correlation_id=accepted.execution_id)
        access = self._access()
        recorded = await self._invoker.run_accepted(self._state, accepted, access)
        return self._with_writes(recorded, access, meta, _done)

    # -- appends ------------------------------------------------------------------

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._append(batch)
        finally:
            self._flusher = None

    async def _append(self, batch: list[_Pending]) -> None:
        items = [e for p in batch for e in p.outcome.events]
        metas = [p.outcome.meta for p in batch for _ in p.outcome.events]
        try:
            async with self._log.transaction() as tx:
                events = await self._data.resolve(tx.conn, items)
                recorded = await tx.append(self.stream, self._durable, events, metas)
                await project_app(tx.conn, recorded)
        except PiCloudError as e:
            log.warning(
                "append to %s failed (%s); reloading from the log", self.stream, e
            )
            await self._recover(batch, e)
            return
        self._durable += len(events)
        self._data.committed([p.ticket for p in batch if p.ticket is not None])
        start = 0
        for item in batch:
            count = len(item.outcome.events)
            mine, start = recorded[start : start + count], start + count
            reply = item.outcome.reply
            item.future.set_result(reply(mine) if callable(reply) else reply)
            if item.outcome.after_commit is not None:
                item.outcome.after_commit()
        if self._durable - self._snapshot_version >= self._settings.app_snapshot_every:
            await self._snapshot()

    async def _recover(self, batch: list[_Pending], error: PiCloudError) -> None:
        """Fail every reply not yet durable and reload the state from the log."""
        async with self._lock:  # no command runs on the speculative state meanwhile
            failed, self._pending = batch + self._pending, []
            unavailable = failure_of(
                ActorUnavailable(f"the write was not recorded: {error.message}")
            )
            for item in failed:
                if item.key is not None:
                    self._answers.pop(item.key, None)
                item.future.set_result(unavailable)
            self._data.reset()
            try:
                await self.activate()
            except NotFound:
                log.info("app %s was deleted; its actor stops", self.app.id)

    async def _snapshot(self) -> None:
        version = self._durable
        data = encode_snapshot(self._state, self._version)
        if self._version != version:
            return  # speculative events pending: the state is ahead; next time
        try:
            await save_snapshot(self._log.pool, self.stream, version, data)
        except PiCloudError as e:
            log.warning("snapshot of %s failed: %s", self.stream, e)
            return
        self._snapshot_version = version


def _done(recorded: list[RecordedEvent], result: Any = None) -> Reply:
    last = recorded[-1] if recorded else None
    return Done(
        result=result,
        txid=last.txid if last else 0,
        position=last.position if last else 0,
    )


def _not_found(message: str) -> Reply:
    return HttpReply(
        status=404,
        headers={"Content-Type": "application/json"},
        body=b'{"error":{"code":"not_found","message":"' + message.encode() + b'"}}',
    )


def _accepted(execution_id: str) -> Reply:
    return HttpReply(
        status=202,
        headers={"Content-Type": "application/json"},
        body=b'{"execution_id":"' + execution_id.encode() + b'"}',
    )
