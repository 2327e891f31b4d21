"""Group commit of an app's actor: the batches, their appends, and what waits
for which append.

A command's events wait in a batch for the next append; its reply is sent
once they are durable. While one append is in flight, the next batch fills.
A read-only run (a route run that wrote nothing) is answered as soon as every
write it could have observed is durable: its execution record joins the next
batch without anyone waiting for it. So a crash can lose the records of
read-only runs of the last commit interval, never a write that was
acknowledged or a value a reply showed.

A batch of such records alone waits up to ``linger_s`` for company before
its append starts (nobody waits for it; anything else queued starts it at
once). At low rates every record was otherwise a commit of its own, and
that commit's CPU (Postgres' and the host's, ~0.35 ms at one client on two
cores) ran beside the next request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Protocol

from picloud.actors._app_data import AppData
from picloud.actors._append_paths import Appender, only_recorded
from picloud.actors._due import DueDeliveries
from picloud.actors._outcome import Outcome
from picloud.actors.protocol import Reply, failure_of
from picloud.errors import (
    ActorUnavailable,
    InvalidInput,
    PiCloudError,
    StoreUnavailable,
    UnstorableValue,
)
from picloud.events import RecordedEvent
from picloud.events.app_state import AppState
from picloud.events.pending import Deliveries
from picloud.metrics import APPEND_BATCH, APPEND_SECONDS

__all__ = ["Answers", "GroupCommit", "Owner", "Pending", "read_only", "reply_of"]

log = logging.getLogger(__name__)

Answers = OrderedDict[str, asyncio.Future[Reply]]
"""Idempotency key → the reply of the command that carried it."""

# A lingering batch starts at this many commands however young it is.
_LINGER_MAX = 64
_SAW_REFUSED = ActorUnavailable("a value it could read was not recorded; retry")


@dataclass(slots=True)
class Pending:
    """A command's events waiting for an append; ``future`` is None when the
    command was answered already (a read-only run, see the module docstring)."""

    outcome: Outcome
    future: asyncio.Future[Reply] | None
    key: str | None
    ticket: int | None

    def answer(self, recorded: list[RecordedEvent]) -> None:
        if self.future is not None:
            self.future.set_result(reply_of(self.outcome, recorded))

    def fail(self, error: PiCloudError, answers: Answers) -> None:
        """Fail the reply, unless it was sent: a read-only run's answer stands
        (and its key keeps it) when its record is lost."""
        if self.future is None or self.future.done():
            return
        if self.key is not None:
            answers.pop(self.key, None)
        self.future.set_result(failure_of(error))


class Watermark:
    """The stream's versions as the actor sees them, and the replies that
    wait for the writes they could have observed to be durable.

    ``version`` counts every event decided, durable or not; ``durable`` those
    appended; ``written`` is the version of the newest event another command
    could observe (any but a read-only run's record). A reply that depends
    on the state is sent once ``durable`` reaches ``written`` as it was when
    the reply was decided.
    """

    __slots__ = ("_waiting", "durable", "version", "written")

    def __init__(self) -> None:
        self.version = self.durable = self.written = 0
        self._waiting: deque[tuple[int, asyncio.Future[Reply], Reply, str | None]]
        self._waiting = deque()

    def reset(self, version: int) -> None:
        """After (re)activation: ``version`` is durable; nobody waits."""
        self.version = self.durable = self.written = version
        self._waiting.clear()

    @property
    def settled(self) -> bool:
        """Every write decided is durable (only read-only records may be pending)."""
        return self.written <= self.durable

    def reply(
        self, future: asyncio.Future[Reply], reply: Reply, key: str | None
    ) -> None:
        """Send ``reply`` now if every write decided so far is durable, else
        once it is; ``key`` is the command's idempotency key."""
        if self.written <= self.durable:
            future.set_result(reply)
        else:
            self._waiting.append((self.written, future, reply, key))

    def advance(self, count: int) -> None:
        """``count`` more events are durable: send the replies that waited for them."""
        self.durable += count
        waiting = self._waiting
        while waiting and waiting[0][0] <= self.durable:
            _, future, reply, _ = waiting.popleft()
            if not future.done():
                future.set_result(reply)

    def fail_waiting(self, error: PiCloudError, answers: Answers) -> None:
        """A write they could have observed will not be durable: fail every
        waiting reply, and forget its key, so a retry runs again."""
        while self._waiting:
            _, future, _, key = self._waiting.popleft()
            if key is not None:
                answers.pop(key, None)
            if not future.done():
                future.set_result(failure_of(error))


class Owner(Protocol):
    """What the group commit needs of its actor."""

    deliveries: Deliveries
    """The pending deliveries as of the durable version."""

    @property
    def state(self) -> AppState: ...

    async def appended(self, changed: set[str]) -> None:
        """After a batch is durable: ``changed`` are the deliveries it touched."""

    async def reload(self) -> None:
        """Drop the speculative state and load the state from the log again."""


class GroupCommit:
    """The batches of one actor's stream; see the module docstring.

    ``lock`` is the actor's: the failure paths hold it, so no command runs
    on a speculative state while it is being dropped.
    """

    def __init__(  # noqa: PLR0913  # the parts of the actor it works with
        self,
        owner: Owner,
        appender: Appender,
        *,
        data: AppData,
        due: DueDeliveries,
        answers: Answers,
        lock: asyncio.Lock,
        linger_s: float = 0.0,
    ) -> None:
        self._owner = owner
        self._appender = appender
        self._data = data
        self._due = due
        self._answers = answers
        self._lock = lock
        self.mark = Watermark()
        self.pending: list[Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._linger_s = linger_s
        self._lingering: asyncio.TimerHandle | None = None
        self._urgent = False  # something pending has a reply waiting for it

    def queue(self, item: Pending, *, writes: bool) -> None:
        """Add ``item``'s events to the next batch, and start an append if
        none is in flight (a batch nobody waits for may linger first);
        ``writes``: a later command can observe them."""
        self.pending.append(item)
        self.mark.version += len(item.outcome.events)
        if writes:
            self.mark.written = self.mark.version
        if writes or item.future is not None:
            self._urgent = True
        if self._flusher is None:
            self._schedule()

    def _schedule(self) -> None:
        """Start the append of what is pending now, or once it has lingered
        (only records nobody waits for, fewer than _LINGER_MAX)."""
        if self._urgent or self._linger_s <= 0 or len(self.pending) >= _LINGER_MAX:
            self._start()
        elif self._lingering is None:
            loop = asyncio.get_running_loop()
            self._lingering = loop.call_later(self._linger_s, self._start)

    def _start(self) -> None:
        if self._lingering is not None:
            self._lingering.cancel()
            self._lingering = None
        if self._flusher is None and self.pending:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def settled(self) -> None:
        """Return once every event queued so far is durable (or failed)."""
        if self.pending:
            self._urgent = True  # what is pending now does not linger
        self._start()
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                self._urgent = False
                try:
                    await self._append(batch)
                except Exception:  # a task root: no reply may be left hanging
                    log.exception("append to %s failed unexpectedly", self._stream)
                    # The details stay in the log: a client learns no internals.
                    error = ActorUnavailable("the write was not recorded; retry")
                    await self._recover(batch, error)
                if self._linger_s > 0 and not self._urgent:
                    break  # records alone may linger (_schedule, below)
        finally:
            self._flusher = None
            if self.pending:
                self._schedule()

    @property
    def _stream(self) -> str:
        return self._appender.stream

    async def _append(self, batch: list[Pending]) -> None:
        owner = self._owner
        items = [e for p in batch for e in p.outcome.events]
        metas = [p.outcome.meta for p in batch for _ in p.outcome.events]
        started = time.perf_counter()
        try:
            recorded, deliveries = await self._appender.append(
                items,
                metas,
                expected=self.mark.durable,
                triggers=owner.state.triggers,
                deliveries=owner.deliveries,
            )
        except UnstorableValue as e:
            log.warning(
                "append to %s refused a value (%s): one by one", self._stream, e
            )
            await self._isolate(batch)
            return
        except PiCloudError as e:
            log.warning(
                "append to %s failed (%s); reloading from the log", self._stream, e
            )
            await self._recover(batch, e)
            return
        APPEND_SECONDS.observe(time.perf_counter() - started)
        APPEND_BATCH.observe(len(items))
        owner.deliveries = deliveries
        self._data.committed([p.ticket for p in batch if p.ticket is not None])
        start = 0
        for item in batch:
            count = len(item.outcome.events)
            item.answer(recorded[start : start + count])
            start += count
        self.mark.advance(len(recorded))
        changed, self._due.changed = self._due.changed, set()
        await owner.appended(changed)

    async def _recover(self, batch: list[Pending], error: PiCloudError) -> None:
        """Fail every reply not yet sent and reload the state from the log."""
        async with self._lock:
            failed, self.pending = batch + self.pending, []
            for item in failed:
                item.fail(not_recorded(error), self._answers)
            self.mark.fail_waiting(not_recorded(error), self._answers)
            self._data.reset()
            self._due.changed.clear()
            await self._owner.reload()

    async def _isolate(self, batch: list[Pending]) -> None:
        """Append each command of ``batch`` and of the queue behind it alone,
        in order: a command whose values Postgres refuses fails by itself
        (with every reply still waiting, which could have read them), the
        others are committed. Then reload the state from the log, which the
        failed commands' events had run ahead of."""
        async with self._lock:
            items, self.pending = batch + self.pending, []
            self._data.reset()
            for n, item in enumerate(items):
                try:
                    await self._append_alone(item)
                except UnstorableValue as e:
                    refused = InvalidInput(f"a value cannot be stored: {e}")
                    item.fail(refused, self._answers)
                    self.mark.fail_waiting(_SAW_REFUSED, self._answers)
                except PiCloudError as e:
                    for rest in items[n:]:
                        rest.fail(not_recorded(e), self._answers)
                    self.mark.fail_waiting(not_recorded(e), self._answers)
                    break
            self._due.changed.clear()
            await self._owner.reload()

    async def _append_alone(self, item: Pending) -> None:
        owner, events = self._owner, list(item.outcome.events)
        recorded, owner.deliveries = await self._appender.with_projections(
            events,
            [item.outcome.meta] * len(events),
            expected=self.mark.durable,
            triggers=owner.state.triggers,
            deliveries=owner.deliveries,
        )
        item.answer(recorded)
        self.mark.advance(len(recorded))


def reply_of(outcome: Outcome, recorded: list[RecordedEvent]) -> Reply:
    reply = outcome.reply
    return reply(recorded) if callable(reply) else reply


def read_only(outcome: Outcome) -> bool:
    """A route run that wrote nothing: its one event records it, nothing
    folds it into state, and its reply needs no place in the log."""
    events = outcome.events
    return (
        len(events) == 1
        and outcome.staged is None
        and not callable(outcome.reply)
        and only_recorded(events[0])
    )


def not_recorded(error: PiCloudError) -> PiCloudError:
    """What a command whose write failed with ``error`` answers: the database's
    unavailability as it is, anything else as ours (a zombie writer's conflict)."""
    if isinstance(error, StoreUnavailable):
        return error
    return ActorUnavailable("the write was not recorded; retry")
