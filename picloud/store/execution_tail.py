"""The execution log followed live: an app's runs, and the conditions the log
records beside them, as they commit.

Guarantees:
- The order and places are the events API's (store.event_pages): reading on
  from the place of an item never skips or repeats a run or a notice, even
  when a read-only run's record commits after a later write.
- A run is the :class:`~picloud.domain.records.ExecutionRecord` the
  execution list answers (``abandoned`` as the log has it when read).
- The conditions are :class:`~picloud.domain.records.ExecutionNotice`:
  ``skipped`` (delivery.skipped.v1: the trigger depth limit, a removed
  trigger or script), ``throttled`` (a run record whose trigger starts with
  ``throttled:``: the first request of an episode the CPU budget refused),
  ``abandoned`` (execution.abandoned.v1: a sync caller gave up),
  ``dead_letter`` (dead_letter.created.v1: a delivery failed every attempt),
  ``host_killed`` (app.host_killed.v1: a run overran its hard deadline) and
  ``quarantined`` (app.quarantined.v1).
- Filters (:class:`ExecutionFilter`) apply to notices too: ``status=ok``
  keeps none, ``status=error`` all; ``script_id`` and ``trigger`` keep the
  notices that name a matching script and trigger label (an abandoned
  execution, a host killed or a quarantine names neither).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import NamedTuple

import asyncpg
import msgspec

from picloud.domain.event_query import After, EventQuery
from picloud.domain.records import EventRecord, ExecutionNotice, ExecutionRecord
from picloud.events.app import (
    AppQuarantined,
    ExecutionAbandoned,
    HostKilled,
    InvocationRecorded,
)
from picloud.events.triggers import DeadLettered, DeliverySkipped
from picloud.store._errors import translate_errors
from picloud.store._executions import ExecutionFilter, abandoned_of, record_of
from picloud.store.event_pages import EventPage, EventReader

__all__ = ["ExecutionTail", "TailItem", "item_of", "matches"]

_THROTTLED = "throttled:"


class TailItem(NamedTuple):
    """A run or a notice, and the place to read on from after it."""

    record: ExecutionRecord | ExecutionNotice
    place: After


def _skipped(e: DeliverySkipped) -> ExecutionNotice:
    return ExecutionNotice(
        kind="skipped",
        at=e.at,
        reason=e.reason,
        script_id=e.script_id,
        trigger=e.trigger,
        delivery_id=e.delivery_id,
    )


def _abandoned(e: ExecutionAbandoned) -> ExecutionNotice:
    return ExecutionNotice(
        kind="abandoned", at=e.at, reason=e.reason, execution_id=e.execution_id
    )


def _dead_letter(e: DeadLettered) -> ExecutionNotice:
    trigger = None if e.trigger_id is None else f"trigger:{e.source}:{e.trigger_id}"
    return ExecutionNotice(
        kind="dead_letter",
        at=e.at,
        reason=f"failed {e.attempts} attempt(s): {e.error}",
        script_id=e.script_id,
        trigger=trigger,
        delivery_id=e.delivery_id,
        dead_letter_id=e.dead_letter_id,
    )


def _host_killed(e: HostKilled) -> ExecutionNotice:
    return ExecutionNotice(
        kind="host_killed",
        at=e.at,
        reason=f"the run overran its hard deadline: host {e.host} was killed",
        execution_id=e.execution_id,
    )


def _quarantined(e: AppQuarantined) -> ExecutionNotice:
    return ExecutionNotice(
        kind="quarantined",
        at=e.at,
        reason=f"{e.host_kills} host kills: the app now runs on a host of its own",
    )


_NOTICES: dict[str, Callable[[bytes], ExecutionNotice]] = {
    "delivery.skipped.v1": lambda raw: _skipped(
        msgspec.json.decode(raw, type=DeliverySkipped)
    ),
    "execution.abandoned.v1": lambda raw: _abandoned(
        msgspec.json.decode(raw, type=ExecutionAbandoned)
    ),
    "dead_letter.created.v1": lambda raw: _dead_letter(
        msgspec.json.decode(raw, type=DeadLettered)
    ),
    "app.host_killed.v1": lambda raw: _host_killed(
        msgspec.json.decode(raw, type=HostKilled)
    ),
    "app.quarantined.v1": lambda raw: _quarantined(
        msgspec.json.decode(raw, type=AppQuarantined)
    ),
}
_RUN = "invocation.recorded.v1"
_TYPES = (_RUN, *_NOTICES)
"""The event types the tail reads."""
_decode_run = msgspec.json.Decoder(InvocationRecorded).decode


def _throttled(run: InvocationRecorded) -> ExecutionNotice:
    return ExecutionNotice(
        kind="throttled",
        at=run.at,
        reason=run.error or "over the CPU budget",
        script_id=run.script_id,
        trigger=run.trigger,
        execution_id=run.execution_id,
    )


def matches(where: ExecutionFilter, item: ExecutionRecord | ExecutionNotice) -> bool:
    """Whether ``item`` passes the filters (see the module docstring)."""
    if isinstance(item, ExecutionRecord):
        status_ok = where.status is None or item.status == where.status
        started: datetime = item.started_at
    else:
        status_ok = where.status in (None, "error")
        started = item.at
    return (
        status_ok
        and (where.script_id is None or item.script_id == where.script_id)
        and (
            where.trigger is None
            or (item.trigger is not None and item.trigger.startswith(where.trigger))
        )
        and (where.since is None or started >= where.since)
        and (where.until is None or started < where.until)
    )


class ExecutionTail:
    """Follows an app's execution log (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool, reader: EventReader) -> None:
        self._pool = pool
        self._reader = reader

    async def end(self) -> After:
        """The place after every committed event (a tail that starts now)."""
        return await self._reader.end()

    async def follow(
        self,
        app_id: str,
        where: ExecutionFilter,
        after: After,
        *,
        limit: int,
        poll_s: float,
    ) -> AsyncIterator[list[TailItem]]:
        """Batches forever: the matching items of each batch of new events as
        it commits, and an empty batch after each wait that found nothing (or
        nothing matching), for a caller's heartbeat."""
        query = EventQuery(streams=(f"app-{app_id}",), types=_TYPES)
        pages = self._reader.follow(query, after, limit=limit, poll_s=poll_s)
        async for page in pages:
            items = await self._items(app_id, page)
            yield [item for item in items if matches(where, item.record)]

    async def _items(self, app_id: str, page: EventPage) -> list[TailItem]:
        runs = {
            i: _decode_run(event.data)
            for i, event in enumerate(page.events)
            if event.type == _RUN
        }
        ids = [r.execution_id for r in runs.values()]
        with translate_errors("follow executions"):
            abandoned = await abandoned_of(self._pool, app_id, ids) if ids else set()
        return [
            TailItem(item_of(event, abandoned, run=runs.get(i)), place)
            for i, (event, place) in enumerate(
                zip(page.events, page.places, strict=True)
            )
        ]


def item_of(
    event: EventRecord,
    abandoned: set[str],
    *,
    run: InvocationRecorded | None = None,
) -> ExecutionRecord | ExecutionNotice:
    """The run or notice an event of the tail's types is (``run``: the event
    decoded already; ``abandoned``: the executions known abandoned)."""
    if event.type != _RUN:
        return _NOTICES[event.type](event.data)
    if run is None:
        run = _decode_run(event.data)
    if run.trigger.startswith(_THROTTLED):
        return _throttled(run)
    return record_of(run, abandoned)
