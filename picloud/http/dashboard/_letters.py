"""Dead letters: the list with its filters and bulk replay, one letter with
its payload and every attempt's error, Replay and Mark resolved."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec
from aiohttp import web

from picloud.domain.access import Capability
from picloud.domain.records import AppRecord
from picloud.errors import Conflict, InvalidInput, NotFound
from picloud.http._admin_apps import app_or_404
from picloud.http._admin_triggers import (
    replay_dead_letter,
    replay_letter,
    resolve_dead_letter,
)
from picloud.http._api import ENDPOINTS
from picloud.http.dashboard._app import script_names
from picloud.http.dashboard._context import app_context
from picloud.http.dashboard._table import Form, action, page
from picloud.http.state import SERVICES

__all__: list[str] = []

_PAGE = 50
BULK_MAX = 100
"""Letters one bulk replay takes at most: each is a command to the app."""
STATES = ("open", "resolved", "all")


class Filter:
    """The list's filter, from a query string or the bulk replay's form."""

    def __init__(self, values: Any) -> None:
        self.state = str(values.get("state") or "open")
        self.script = str(values.get("script") or "")
        if self.state not in STATES:
            raise InvalidInput(f"state must be one of {', '.join(STATES)}")

    def query(self, store_args: dict[str, Any]) -> dict[str, Any]:
        return {
            **store_args,
            "resolved": True if self.state == "resolved" else None,
            "open_only": self.state == "open",
            "script_id": self.script or None,
        }


@page(
    "/ui/apps/{app}/dead-letters",
    name="ui_dead_letters",
    needs=Capability.DEAD_LETTERS_READ,
)
async def letters_page(request: web.Request) -> tuple[str, dict[str, Any]]:
    app = await app_or_404(request)
    shown = Filter(request.query)
    cursor = request.query.get("cursor", "")
    if cursor and not cursor.isdigit():
        raise InvalidInput("cursor must be a non-negative integer")
    store = request.app[SERVICES].store
    letters, after = await store.dead_letters(
        app.id,
        **shown.query({"before": int(cursor) if cursor else None, "limit": _PAGE}),
    )
    return "dead_letters.html", {
        **await app_context(request, app),
        "letters": letters,
        "subjects": {d.id: _subject(d.event) for d in letters},
        "after": after,
        "filter": shown,
        "states": STATES,
        "names": await script_names(request, app.id),
        "bulk_max": BULK_MAX,
    }


@page(
    "/ui/apps/{app}/dead-letters/{id}",
    name="ui_dead_letter",
    needs=Capability.DEAD_LETTERS_READ,
)
async def letter_page(request: web.Request) -> tuple[str, dict[str, Any]]:
    app = await app_or_404(request)
    store = request.app[SERVICES].store
    letter = await store.dead_letter(app.id, request.match_info["id"])
    if letter is None:
        raise NotFound(f"no dead letter {request.match_info['id'][:80]!r} in this app")
    return "dead_letter.html", {
        **await app_context(request, app),
        "letter": letter,
        "attempts": await store.dead_letter_attempts(app.id, letter.id),
        "names": await script_names(request, app.id),
    }


def _subject(event: msgspec.Raw) -> str:
    """What the letter's event was about: ``collection/key``, a document, …"""
    fields = msgspec.json.decode(event)
    if not isinstance(fields, dict):
        return ""
    thing = fields.get("key") or fields.get("id") or fields.get("dead_letter_id")
    collection = fields.get("collection")
    if collection and thing:
        return f"{collection}/{thing}"
    return str(thing or "")


def _after(request: web.Request, form: Form, done: str) -> str:
    """Back to the list the button was on, or to the letter's own page."""
    base = f"/ui/apps/{request.match_info['app']}/dead-letters"
    if form.get("from") == "list":
        return f"{base}?done={done}"
    return f"{base}/{request.match_info['id']}?done={done}"


@action(
    "/ui/apps/{app}/dead-letters/{id}/replay",
    name="ui_replay",
    api=ENDPOINTS.of(replay_dead_letter),
    back=letter_page,
)
async def replay_form(request: web.Request, form: Form) -> str:
    await replay_dead_letter(request)
    return _after(request, form, "replayed")


@action(
    "/ui/apps/{app}/dead-letters/{id}/resolve",
    name="ui_resolve",
    api=ENDPOINTS.of(resolve_dead_letter),
    back=letter_page,
)
async def resolve_form(request: web.Request, form: Form) -> str:
    await resolve_dead_letter(request)
    return _after(request, form, "resolved")


@action(
    "/ui/apps/{app}/dead-letters/bulk-replay",
    name="ui_bulk_replay",
    api=ENDPOINTS.of(replay_dead_letter),
    back=letters_page,
)
async def bulk_replay_form(request: web.Request, form: Form) -> str:
    """Replay the open letters the filter shows (at most BULK_MAX), each
    through the API's own replay; one replayed meanwhile is left alone."""
    app = await app_or_404(request)
    chosen = Filter(form)
    replayed = await _replay_all(request, app, chosen)
    script = f"&script={quote(chosen.script)}" if chosen.script else ""
    base = f"/ui/apps/{app.slug}/dead-letters"
    return f"{base}?done=bulk_replayed&n={replayed}{script}"


async def _replay_all(request: web.Request, app: AppRecord, chosen: Filter) -> int:
    store = request.app[SERVICES].store
    letters, _ = await store.dead_letters(
        app.id,
        resolved=None,
        before=None,
        limit=BULK_MAX,
        open_only=True,
        script_id=chosen.script or None,
    )
    replayed = 0
    for letter in letters:
        try:
            await replay_letter(request, app.id, letter.id)
        except (Conflict, NotFound):
            continue  # resolved, replayed or expired since it was listed
        replayed += 1
    return replayed
