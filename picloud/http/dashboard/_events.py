"""An app's event stream: the newest events, older pages, and a live tail
by server-sent events.

The tail needs what reading the app's stream needs (EVENTS_READ on the app),
checked when it starts and again before each batch it sends, so a removed
membership or an ended session stops it at the next event. It shows the
``app-{id}`` stream only: users, keys and their hashes are events of the
``system`` stream and never appear here.

The front door is not woken by an app's commits (it listens to the routing
table's only), so the tail polls the stream, cheaply: one indexed read of the
events after the last one it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
from aiohttp import web

from picloud.domain.access import Capability
from picloud.errors import PiCloudError
from picloud.events import RecordedEvent
from picloud.http._admin_apps import app_or_404
from picloud.http._auth import AUTH
from picloud.http.dashboard._context import app_context
from picloud.http.dashboard._table import PAGES, page
from picloud.http.state import SERVICES

__all__ = ["CLOSING", "EventRow", "close_tails", "event_row"]

_PAGE = 50
_POLL_S = 0.5
_HEARTBEAT_S = 15.0
_LIFETIME_S = 300.0
"""A tail ends after this; the browser reconnects from its Last-Event-ID."""
_SUMMARY_FIELDS = (
    "name",
    "method",
    "path",
    "collection",
    "key",
    "doc_id",
    "status",
    "trigger",
    "kind",
    "attempt",
    "error",
)

CLOSING = web.AppKey("dashboard_closing", asyncio.Event)
"""Set at shutdown: every tail ends, so the server does not wait for them."""


class EventRow(msgspec.Struct, frozen=True, kw_only=True):
    """One event as the page and the tail show it."""

    version: int
    type: str
    at: str
    summary: str
    data: str
    meta: str


def event_row(recorded: RecordedEvent) -> EventRow:
    data = msgspec.json.encode(recorded.event)
    fields = msgspec.json.decode(data)
    summary = " ".join(
        str(fields[name])[:80] for name in _SUMMARY_FIELDS if fields.get(name)
    )
    return EventRow(
        version=recorded.version,
        type=str(fields.get("type", "")),
        at=recorded.recorded_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        summary=summary,
        data=msgspec.json.format(data, indent=2).decode(),
        meta=msgspec.json.format(msgspec.json.encode(recorded.meta), indent=2).decode(),
    )


@page("/ui/apps/{app}/events", name="ui_events", needs=Capability.EVENTS_READ)
async def events_page(request: web.Request) -> tuple[str, dict[str, Any]]:
    """The newest events (or those before ``?before=``), oldest first."""
    app = await app_or_404(request)
    store = request.app[SERVICES].store
    head = await store.app_stream_version(app.id)
    raw = request.query.get("before", "")
    before = int(raw) if raw.isdigit() else head + 1
    start = max(0, before - 1 - _PAGE)
    events = await store.app_events(app.id, after=start, limit=before - 1 - start)
    return "events.html", {
        **await app_context(request, app),
        "rows": [event_row(e) for e in events],
        "older": start + 1 if start > 0 else None,
        "live": before > head,
        "after": events[-1].version if events else start,
    }


@page("/ui/apps/{app}/events/live", name="ui_events_live", needs=Capability.EVENTS_READ)
async def events_live(request: web.Request) -> web.StreamResponse:
    """``text/event-stream`` of the app's events after ``?after=`` (or the
    ``Last-Event-ID`` the browser resends when it reconnects)."""
    app = await app_or_404(request)
    raw = request.headers.get("Last-Event-ID") or request.query.get("after", "")
    after = (
        int(raw)
        if raw.isdigit()
        else await request.app[SERVICES].store.app_stream_version(app.id)
    )
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    with contextlib.suppress(ConnectionResetError):
        await response.write(b"retry: 2000\n\n")
        try:
            await _tail(request, response, app.id, after)
        except PiCloudError as e:  # signed out or no longer allowed: say so, end
            await response.write(b"event: ended\ndata: %s\n\n" % e.code.encode())
    return response


async def _tail(
    request: web.Request, response: web.StreamResponse, app_id: str, after: int
) -> None:
    store = request.app[SERVICES].store
    closing = request.app[CLOSING]
    entry = _LIVE.entry
    loop = asyncio.get_running_loop()
    ends, quiet_since = loop.time() + _LIFETIME_S, loop.time()
    while not closing.is_set() and loop.time() < ends:
        events = await store.app_events(app_id, after=after, limit=_PAGE)
        if events:
            await request.app[AUTH].authorize(request, entry)  # still allowed?
            await response.write(b"".join(_frame(e) for e in events))
            after, quiet_since = events[-1].version, loop.time()
            continue
        if loop.time() - quiet_since > _HEARTBEAT_S:
            await response.write(b": still here\n\n")  # keeps proxies from closing it
            quiet_since = loop.time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), _POLL_S)


def _frame(recorded: RecordedEvent) -> bytes:
    body = msgspec.json.encode(event_row(recorded))
    return b"id: %d\nevent: app-event\ndata: %s\n\n" % (recorded.version, body)


_LIVE = next(p for p in PAGES if p.name == "ui_events_live")


async def close_tails(app: web.Application) -> None:
    """``on_shutdown``: end every tail."""
    app[CLOSING].set()
