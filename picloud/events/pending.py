"""Pending deliveries, derived from the log (pure).

``evolve_deliveries`` folds committed events into the set of deliveries not
yet finished: an event some trigger kind follows (a data write, a new dead
letter: :mod:`picloud.events.trigger_kinds`) adds one per trigger that takes
it, an accepted async request adds one; the outcome events of a run
(success, retry, skip, dead letter) finish or move them. Because the set is
a function of the log, a crash can never lose a delivery: after a restart the
same fold finds what is still pending.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from pyrsistent import PClass, field, pset
from pyrsistent.typing import PMap, PSet

from picloud.events._base import RecordedEvent
from picloud.events.app import (
    JSON_NULL,
    InvocationAccepted,
    InvocationRecorded,
    RequestRecord,
    RetryPolicy,
)
from picloud.events.trigger_kinds import Firing, firing_of
from picloud.events.triggers import (
    DeadLettered,
    DeadLetterHandlerFailed,
    DeadLetterReplayed,
    DeliverySkipped,
    RetryScheduled,
    TriggerAdded,
)

__all__ = [
    "Deliveries",
    "Delivery",
    "TriggerInfo",
    "evolve_deliveries",
    "trigger_info",
]

Deliveries = PMap[str, "Delivery"]


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One event some script must still handle."""

    id: str
    seq: int
    """The stream version of the event that caused it: deliveries run in this
    order (at least once, in log order per app)."""
    source: str
    """``kv``, ``docs``, ``route`` or ``dead_letter``."""
    script_id: str
    first_attempt_at: datetime
    trigger_id: str | None = None
    route_id: str | None = None
    event: msgspec.Raw = JSON_NULL
    """``ctx.event`` as JSON."""
    request: RequestRecord | None = None
    depth: int = 0
    attempt: int = 1
    due_at: datetime | None = None
    """None: due at once."""
    dead_letter_id: str | None = None
    """For a dead-letter trigger's run: the dead letter it handles."""
    execution_id: str | None = None
    """The first attempt's execution id, when the caller already has it (async)."""
    capabilities: tuple[str, ...] | None = None
    request_id: str | None = None
    """An async route's caller's ``X-Request-Id``."""


class TriggerInfo(PClass):
    id: str = field(type=str, mandatory=True)
    kind: str = field(type=str, mandatory=True)
    script_id: str = field(type=str, mandatory=True)
    ops: PSet[str] = field(initial=pset())
    collection: str | None = field(type=(str, type(None)), initial=None)
    capabilities: tuple[str, ...] | None = field(type=(tuple, type(None)), initial=None)
    retry: RetryPolicy | None = field(type=(RetryPolicy, type(None)), initial=None)
    cron: str | None = field(type=(str, type(None)), initial=None)
    timezone: str | None = field(type=(str, type(None)), initial=None)
    added_at: datetime | None = field(type=(datetime, type(None)), initial=None)
    last_fired: datetime | None = field(type=(datetime, type(None)), initial=None)
    """A schedule's latest fired time (None: never fired)."""

    def takes(self, kind: str, op: str, collection: str | None) -> bool:
        return (
            self.kind == kind
            and (not self.ops or op in self.ops)
            and (self.collection is None or self.collection == collection)
        )


def trigger_info(event: TriggerAdded) -> TriggerInfo:
    return TriggerInfo(
        id=event.trigger_id,
        kind=event.kind,
        script_id=event.script_id,
        ops=pset(event.ops),
        collection=event.collection,
        capabilities=None if event.capabilities is None else tuple(event.capabilities),
        retry=event.retry,
        cron=event.cron,
        timezone=event.timezone,
        added_at=event.at,
    )


def _replayed(replay: DeadLetterReplayed, seq: int) -> Delivery:
    """A fresh delivery of a dead letter's original event."""
    return Delivery(
        id=replay.delivery_id,
        seq=seq,
        source=replay.source,
        script_id=replay.script_id,
        trigger_id=replay.trigger_id,
        route_id=replay.route_id,
        event=replay.event,
        request=replay.request,
        depth=replay.depth,
        first_attempt_at=replay.at,
    )


def evolve_deliveries(
    deliveries: Deliveries,
    triggers: PMap[str, TriggerInfo],
    recorded: RecordedEvent,
    changed: set[str] | None = None,
) -> Deliveries:
    """The pending deliveries after ``recorded`` (see the module docstring).

    The ids of deliveries the event adds, moves or finishes are added to
    ``changed`` when given, so a caller can act on them without a full scan.
    """
    after = _evolve(deliveries, triggers, recorded)
    if changed is not None and after is not deliveries:
        changed.update(_touched(recorded, triggers))
    return after


def _touched(recorded: RecordedEvent, triggers: PMap[str, TriggerInfo]) -> list[str]:
    event = recorded.event
    touched: list[str] = []
    match event:
        case InvocationAccepted():
            touched.append(f"route:{event.execution_id}")
        case (
            InvocationRecorded(delivery_id=str())
            | RetryScheduled()
            | DeliverySkipped()
            | DeadLetterHandlerFailed()
            | DeadLetterReplayed()
            | DeadLettered()
        ):
            touched.append(event.delivery_id)  # type: ignore[arg-type]  # str by the pattern
    firing = firing_of(recorded)
    if firing is not None:
        touched += [f"{firing.key}:{t}" for t in triggers]
    return touched


def _evolve(
    deliveries: Deliveries, triggers: PMap[str, TriggerInfo], recorded: RecordedEvent
) -> Deliveries:
    """What the event finishes or moves, then what it fires (a dead letter
    does both: it ends its delivery and fires the dead-letter triggers)."""
    deliveries = _outcome(deliveries, recorded)
    firing = firing_of(recorded)
    return deliveries if firing is None else _fire(deliveries, triggers, firing)


def _outcome(deliveries: Deliveries, recorded: RecordedEvent) -> Deliveries:
    event = recorded.event
    match event:
        case InvocationAccepted():
            return deliveries.set(
                f"route:{event.execution_id}",
                Delivery(
                    id=f"route:{event.execution_id}",
                    seq=recorded.version,
                    source="route",
                    script_id=event.script_id,
                    route_id=event.route_id,
                    request=event.request,
                    first_attempt_at=event.at,
                    execution_id=event.execution_id,
                    request_id=event.request_id,
                ),
            )
        case InvocationRecorded(delivery_id=str(delivery_id), status="ok"):
            return deliveries.discard(delivery_id)
        case RetryScheduled():
            pending = deliveries.get(event.delivery_id)
            if pending is None:
                return deliveries
            moved = msgspec.structs.replace(
                pending, attempt=event.attempt, due_at=event.due_at
            )
            return deliveries.set(event.delivery_id, moved)
        case DeliverySkipped() | DeadLetterHandlerFailed() | DeadLettered():
            return deliveries.discard(event.delivery_id)
        case DeadLetterReplayed():
            return deliveries.set(event.delivery_id, _replayed(event, recorded.version))
        case _:
            return deliveries


def _fire(
    deliveries: Deliveries, triggers: PMap[str, TriggerInfo], firing: Firing
) -> Deliveries:
    """A delivery for each trigger that takes the firing."""
    for trigger in triggers.values():
        if firing.trigger_id is not None and trigger.id != firing.trigger_id:
            continue
        if trigger.takes(firing.kind, firing.op, firing.collection):
            delivery_id = f"{firing.key}:{trigger.id}"
            deliveries = deliveries.set(
                delivery_id,
                Delivery(
                    id=delivery_id,
                    seq=firing.seq,
                    source=firing.kind,
                    script_id=trigger.script_id,
                    trigger_id=trigger.id,
                    event=msgspec.Raw(firing.event),
                    depth=firing.depth,
                    first_attempt_at=firing.first_attempt_at,
                    dead_letter_id=firing.dead_letter_id,
                    capabilities=trigger.capabilities,
                ),
            )
    return deliveries
