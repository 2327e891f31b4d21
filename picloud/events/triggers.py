"""Events of triggers, deliveries, retries and dead letters (SPEC.md §4).

A *delivery* is one event (a data write, an accepted async request, a new dead
letter) that some script must handle. Deliveries are not recorded as events
of their own: each is derived from the event that causes it and the triggers
in force (see :mod:`picloud.events.pending`), so a committed event can never
lose its delivery. These events record what happened to a delivery.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from picloud.events._base import Event
from picloud.events.app import RequestRecord, RetryPolicy

__all__ = [
    "DeadLetterExpired",
    "DeadLetterHandlerFailed",
    "DeadLetterReplayed",
    "DeadLetterResolved",
    "DeadLettered",
    "DeliverySkipped",
    "RetryScheduled",
    "ScheduleFired",
    "TriggerAdded",
    "TriggerEvent",
    "TriggerRemoved",
]


class TriggerAdded(Event, frozen=True, tag="trigger.added.v1"):
    """``script_id`` now handles the app's ``kind`` events of ``ops`` (all when
    empty) in ``collection`` (all when None)."""

    app_id: str
    trigger_id: str
    kind: str
    """A name in :data:`picloud.events.trigger_kinds.TRIGGER_KINDS`."""
    script_id: str
    ops: list[str] = []
    collection: str | None = None
    capabilities: list[str] | None = None
    """What the handler may do; None is the default a public route gets."""
    retry: RetryPolicy | None = None
    """How its failed deliveries are tried again; None: the defaults."""
    cron: str | None = None
    """A schedule trigger's cron expression (5 fields, or 6 with seconds last)."""
    timezone: str | None = None
    """The IANA zone the cron expression reads its times in (None: UTC)."""


class ScheduleFired(Event, frozen=True, tag="schedule.fired.v1"):
    """The schedule trigger ``trigger_id`` fires for its time ``scheduled_at``
    (decided by the app's actor, its one writer, from the log: a time is
    fired once; times missed while nothing ran collapse into the latest)."""

    app_id: str
    trigger_id: str
    scheduled_at: datetime


class TriggerRemoved(Event, frozen=True, tag="trigger.removed.v1"):
    app_id: str
    trigger_id: str


class RetryScheduled(Event, frozen=True, tag="delivery.retry_scheduled.v1"):
    """The delivery failed; attempt ``attempt`` runs at ``due_at``."""

    app_id: str
    delivery_id: str
    attempt: int
    due_at: datetime
    error: str


class DeliverySkipped(Event, frozen=True, tag="delivery.skipped.v1"):
    """Not run and not dead-lettered: the trigger chain is too deep, or the
    trigger or script is gone."""

    app_id: str
    delivery_id: str
    reason: str
    script_id: str | None = None
    """The script that was to run (None in records older than the field)."""
    trigger: str | None = None
    """The label its run would have had (``trigger:kv:<id>``, ``async:…``)."""


class DeadLettered(Event, frozen=True, tag="dead_letter.created.v1"):
    """A delivery that failed every attempt; ``delivery`` is what it was."""

    app_id: str
    dead_letter_id: str
    delivery_id: str
    script_id: str
    trigger_id: str | None
    source: str
    """``kv``, ``docs``, ``route`` or ``dead_letter``: what the handler got."""
    event: msgspec.Raw
    """The ``ctx.event`` the handler got, as JSON (null for async routes)."""
    error: str
    attempts: int
    first_attempt_at: datetime
    request: RequestRecord | None = None
    route_id: str | None = None
    depth: int = 0


class DeadLetterReplayed(Event, frozen=True, tag="dead_letter.replayed.v1"):
    """The dead letter's event is delivered again, with fresh attempts; the
    fields after ``delivery_id`` repeat the dead letter's, so the new delivery
    follows from this event alone."""

    app_id: str
    dead_letter_id: str
    delivery_id: str
    source: str
    script_id: str
    event: msgspec.Raw
    trigger_id: str | None = None
    route_id: str | None = None
    request: RequestRecord | None = None
    depth: int = 0
    by: str | None = None


class DeadLetterResolved(Event, frozen=True, tag="dead_letter.resolved.v1"):
    app_id: str
    dead_letter_id: str
    by: str | None = None


class DeadLetterHandlerFailed(Event, frozen=True, tag="dead_letter.handler_failed.v1"):
    """A dead-letter trigger's handler failed: recorded on the original dead
    letter, never retried and never dead-lettered itself (recursion stop)."""

    app_id: str
    dead_letter_id: str
    delivery_id: str
    error: str


class DeadLetterExpired(Event, frozen=True, tag="dead_letter.expired.v1"):
    """Removed by the retention sweep."""

    app_id: str
    dead_letter_id: str


TriggerEvent = (
    TriggerAdded
    | TriggerRemoved
    | RetryScheduled
    | DeliverySkipped
    | DeadLettered
    | DeadLetterReplayed
    | DeadLetterResolved
    | DeadLetterHandlerFailed
    | DeadLetterExpired
    | ScheduleFired
)
