"""The table of trigger kinds: the one place that lists them.

A :class:`TriggerKind` names the events it follows and, for each, what
``ctx.event`` its handler gets (a :class:`Firing`); the ops and whether it
takes a collection are what the admin API accepts. The fold of pending
deliveries (:mod:`picloud.events.pending`), the trigger decider, the admin
API's endpoints and the OpenAPI document all read this table, so a new kind
is one entry here (and its events).

It lives with the events, below the domain, because the pending-deliveries
fold, a pure function of the log, needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from picloud.events._base import RecordedEvent, rfc3339
from picloud.events.app import (
    JSON_NULL,
    DocCreated,
    DocDeleted,
    DocUpdated,
    KvDeleted,
    KvExpired,
    KvSet,
)
from picloud.events.triggers import DeadLettered, ScheduleFired

__all__ = ["TRIGGER_KINDS", "Firing", "TriggerKind", "firing_of", "trigger_kind"]

_encode = msgspec.json.encode


@dataclass(frozen=True, slots=True)
class Firing:
    """What one followed event asks of the triggers of its kind."""

    kind: str
    op: str
    collection: str | None
    event: bytes
    """``ctx.event`` as JSON."""
    key: str
    """The delivery of trigger T is ``{key}:{T}`` (stable: the log names it)."""
    seq: int
    """The stream version of the followed event (deliveries run in this order)."""
    depth: int
    """The trigger depth of the handler's run."""
    first_attempt_at: datetime
    dead_letter_id: str | None = None
    """Set when the handler handles a dead letter (the recursion stop)."""
    trigger_id: str | None = None
    """Set when one trigger alone takes it (a schedule's own firing)."""


Builder = Callable[[RecordedEvent], Firing]


@dataclass(frozen=True)
class TriggerKind:
    name: str
    summary: str
    ops: tuple[str, ...]
    """The ops a trigger may filter on; () means it takes no ops."""
    takes_collection: bool
    follows: dict[type[Any], Builder]
    """Event type → the Firing it makes."""
    takes_schedule: bool = False
    """Configured with ``{cron, timezone}``; fired by the app's actor."""


def _data_firing(
    kind: str, op: str, recorded: RecordedEvent, body: dict[str, Any]
) -> Firing:
    event = recorded.event
    collection: str = getattr(event, "collection")  # noqa: B009  # every data event has one
    payload = {"source": kind, "op": op, "collection": collection, **body}
    return Firing(
        kind=kind,
        op=op,
        collection=collection,
        event=_encode(payload),
        key=str(recorded.version),
        seq=recorded.version,
        depth=recorded.meta.trigger_depth + 1,
        first_attempt_at=recorded.recorded_at,
    )


def _kv_set(recorded: RecordedEvent) -> Firing:
    event: KvSet = recorded.event  # type: ignore[assignment]  # by the table
    body: dict[str, Any] = {"key": event.key, "value": event.value}
    if event.prev != JSON_NULL:
        body["prev_value"] = event.prev
    return _data_firing("kv", "set", recorded, body)


def _kv_deleted(recorded: RecordedEvent) -> Firing:
    event: KvDeleted = recorded.event  # type: ignore[assignment]  # by the table
    body = {"key": event.key, "prev_value": event.prev}
    return _data_firing("kv", "delete", recorded, body)


def _kv_expired(recorded: RecordedEvent) -> Firing:
    event: KvExpired = recorded.event  # type: ignore[assignment]  # by the table
    body = {
        "key": event.key,
        "prev_value": event.prev,
        "expired_at": rfc3339(event.expires_at),
    }
    return _data_firing("kv", "expire", recorded, body)


def _doc_created(recorded: RecordedEvent) -> Firing:
    event: DocCreated = recorded.event  # type: ignore[assignment]  # by the table
    body = {"id": event.doc_id, "data": event.data}
    return _data_firing("docs", "create", recorded, body)


def _doc_updated(recorded: RecordedEvent) -> Firing:
    event: DocUpdated = recorded.event  # type: ignore[assignment]  # by the table
    body = {"id": event.doc_id, "data": event.data, "prev_data": event.prev_data}
    return _data_firing("docs", "update", recorded, body)


def _doc_deleted(recorded: RecordedEvent) -> Firing:
    event: DocDeleted = recorded.event  # type: ignore[assignment]  # by the table
    body = {"id": event.doc_id, "prev_data": event.prev_data}
    return _data_firing("docs", "delete", recorded, body)


def _dead_lettered(recorded: RecordedEvent) -> Firing:
    event: DeadLettered = recorded.event  # type: ignore[assignment]  # by the table
    letter = {
        "id": event.dead_letter_id,
        "source": event.source,
        "event": event.event,
        "error": event.error,
        "attempts": event.attempts,
        "trigger_id": event.trigger_id,
        "script_id": event.script_id,
        "created_at": event.at,
    }
    payload = {"source": "dead_letter", "op": "create", "dead_letter": letter}
    return Firing(
        kind="dead_letter",
        op="create",
        collection=None,
        event=_encode(payload),
        key=f"dl:{event.dead_letter_id}",
        seq=recorded.version,
        depth=event.depth + 1,
        first_attempt_at=event.at,
        dead_letter_id=event.dead_letter_id,
    )


def _schedule_fired(recorded: RecordedEvent) -> Firing:
    event: ScheduleFired = recorded.event  # type: ignore[assignment]  # by the table
    payload = {
        "source": "schedule",
        "op": "fire",
        "scheduled_at": rfc3339(event.scheduled_at),
        "trigger_id": event.trigger_id,
    }
    return Firing(
        kind="schedule",
        op="fire",
        collection=None,
        event=_encode(payload),
        key=f"sched:{rfc3339(event.scheduled_at)}",
        seq=recorded.version,
        depth=1,
        first_attempt_at=recorded.recorded_at,
        trigger_id=event.trigger_id,
    )


TRIGGER_KINDS: dict[str, TriggerKind] = {
    kind.name: kind
    for kind in (
        TriggerKind(
            name="kv",
            summary="Run a script after each KV write of the app, or a key's "
            "TTL running out (op expire)",
            ops=("set", "delete", "expire"),
            takes_collection=True,
            follows={KvSet: _kv_set, KvDeleted: _kv_deleted, KvExpired: _kv_expired},
        ),
        TriggerKind(
            name="docs",
            summary="Run a script after each document write of the app",
            ops=("create", "update", "delete"),
            takes_collection=True,
            follows={
                DocCreated: _doc_created,
                DocUpdated: _doc_updated,
                DocDeleted: _doc_deleted,
            },
        ),
        TriggerKind(
            name="dead_letter",
            summary="Run a script on each new dead letter of the app",
            ops=(),
            takes_collection=False,
            follows={DeadLettered: _dead_lettered},
        ),
        TriggerKind(
            name="schedule",
            summary="Run a script on a cron schedule, in a time zone; "
            "ctx.event = {source = 'schedule', scheduled_at = RFC 3339}. "
            "At least once, never twice for one time; times missed while "
            "PiCloud was down give one catch-up run",
            ops=(),
            takes_collection=False,
            follows={ScheduleFired: _schedule_fired},
            takes_schedule=True,
        ),
    )
}

_BUILDERS: dict[type[Any], Builder] = {
    event_type: build
    for kind in TRIGGER_KINDS.values()
    for event_type, build in kind.follows.items()
}


def trigger_kind(name: str) -> TriggerKind | None:
    return TRIGGER_KINDS.get(name)


def firing_of(recorded: RecordedEvent) -> Firing | None:
    """What ``recorded`` asks of the triggers, if some kind follows it."""
    build = _BUILDERS.get(type(recorded.event))
    return None if build is None else build(recorded)
