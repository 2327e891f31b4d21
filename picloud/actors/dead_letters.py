"""Replaying and resolving dead letters: the events, for the admin API and the SDK."""

from __future__ import annotations

import uuid

import msgspec

from picloud.errors import Conflict
from picloud.events import Event, utcnow
from picloud.events.app import RequestRecord
from picloud.events.triggers import DeadLetterReplayed, DeadLetterResolved
from picloud.store.triggers import DeadLetterRecord

__all__ = ["replay_events", "resolve_events"]


def replay_events(letter: DeadLetterRecord, by: str | None) -> list[Event]:
    """Deliver the letter's event again with fresh attempts (not when resolved)."""
    if letter.resolution == "resolved":
        raise Conflict(f"dead letter {letter.id} is resolved; it cannot be replayed")
    request = (
        None
        if letter.request is None
        else msgspec.json.decode(letter.request, type=RequestRecord)
    )
    return [
        DeadLetterReplayed(
            at=utcnow(),
            app_id=letter.app_id,
            dead_letter_id=letter.id,
            delivery_id=f"replay:{letter.id}:{uuid.uuid4().hex[:8]}",
            source=letter.source,
            script_id=letter.script_id,
            event=letter.event,
            trigger_id=letter.trigger_id,
            route_id=letter.route_id,
            request=request,
            depth=letter.depth,
            by=by,
        )
    ]


def resolve_events(letter: DeadLetterRecord, by: str | None) -> list[Event]:
    """Mark it resolved, recording who; resolving twice changes nothing."""
    if letter.resolution == "resolved":
        return []
    return [
        DeadLetterResolved(
            at=utcnow(), app_id=letter.app_id, dead_letter_id=letter.id, by=by
        )
    ]
