"""Replaying and resolving dead letters: the events they record, and a dead
letter as scripts see it (for the admin API and the SDK alike)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from picloud.domain.records import DeadLetterRecord
from picloud.errors import Conflict
from picloud.events import Event, rfc3339, utcnow
from picloud.events.app import RequestRecord
from picloud.events.triggers import DeadLetterReplayed, DeadLetterResolved

__all__ = ["dead_letter_view", "replay_events", "resolve_events"]

_decode = msgspec.json.decode


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


def dead_letter_view(letter: DeadLetterRecord) -> dict[str, Any]:
    """A dead letter as scripts see it."""
    return {
        "id": letter.id,
        "source": letter.source,
        "event": _decode(letter.event),
        "error": letter.error,
        "attempts": letter.attempts,
        "resolution": letter.resolution,
        "trigger_id": letter.trigger_id,
        "script_id": letter.script_id,
        "created_at": rfc3339(letter.created_at),
    }
