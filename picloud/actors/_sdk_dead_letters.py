"""``dead_letters.list/replay/resolve`` as the SDK of one invocation."""

from __future__ import annotations

from typing import Any

from picloud.actors._app_data import DataSource, Staged
from picloud.domain.dead_letters import dead_letter_view, replay_events, resolve_events
from picloud.domain.records import DeadLetterRecord
from picloud.domain.sdk_args import limit_of, options
from picloud.errors import Conflict, SdkCallError
from picloud.scripting import JSONValue

__all__ = ["DeadLetterOps"]


class DeadLetterOps:
    """``dead_letters.list/replay/resolve`` of one invocation (SPEC.md §4)."""

    def __init__(self, data: DataSource, staged: Staged) -> None:
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
        letters, after = await self._data.dead_letters(
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
        letter = await self._data.dead_letter(letter_id)
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
