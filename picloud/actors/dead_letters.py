"""Replaying and resolving dead letters: the events, for the admin API and the SDK."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from picloud.actors.app_data import AppData, Staged
from picloud.actors.sdk_args import limit_of, options
from picloud.errors import Conflict, SdkCallError
from picloud.events import Event, utcnow
from picloud.events.app import RequestRecord
from picloud.events.triggers import DeadLetterReplayed, DeadLetterResolved
from picloud.scripting import JSONValue
from picloud.store.triggers import DeadLetterRecord, get_dead_letter, list_dead_letters

_decode = msgspec.json.decode

__all__ = ["DeadLetterOps", "dead_letter_view", "replay_events", "resolve_events"]


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


class DeadLetterOps:
    """``dead_letters.list/replay/resolve`` of one invocation (SPEC.md §4)."""

    def __init__(self, data: AppData, staged: Staged) -> None:
        self._data = data
        self.staged = staged

    async def list_letters(self, args: list[Any]) -> JSONValue:
        opts = options(args, 0, {"resolved", "cursor", "limit"})
        resolved = opts.get("resolved")
        if resolved is not None and not isinstance(resolved, bool):
            raise SdkCallError("resolved must be a boolean")
        cursor = opts.get("cursor")
        if cursor is not None and not (isinstance(cursor, str) and cursor.isdigit()):
            raise SdkCallError("cursor must be the string a previous list returned")
        letters, after = await list_dead_letters(
            self._data.pool,
            self._data.app_id,
            resolved=resolved,
            before=None if cursor is None else int(cursor),
            limit=limit_of(opts.get("limit")),
        )
        page: dict[str, Any] = {"items": [dead_letter_view(d) for d in letters]}
        if after is not None:
            page["cursor"] = str(after)
        return page

    async def _letter(self, args: list[Any]) -> DeadLetterRecord:
        letter_id = args[0] if args else None
        if not isinstance(letter_id, str) or not letter_id:
            raise SdkCallError("a dead letter id must be a non-empty string")
        letter = await get_dead_letter(self._data.pool, self._data.app_id, letter_id)
        if letter is None:
            raise SdkCallError(f"no dead letter {letter_id[:80]!r} in this app")
        return letter

    async def replay(self, args: list[Any]) -> JSONValue:
        try:
            self.staged.events += replay_events(await self._letter(args), "script")
        except Conflict as e:
            raise SdkCallError(e.message) from None
        return True

    async def resolve(self, args: list[Any]) -> JSONValue:
        events = resolve_events(await self._letter(args), "script")
        self.staged.events += events
        return bool(events)


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
        "created_at": letter.created_at.isoformat(),
    }
