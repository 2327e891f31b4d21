"""The event log for analysts: pages of the global order and a live tail.

``GET /api/v1/admin/events`` answers ``{items, next}``: up to ``limit``
events in the global order, and ``next``, the opaque place to go on from —
always given, so a reader can come back for what commits later; a page short
of ``limit`` has reached the end of the committed log. Reading on from
``next`` never skips or repeats an event (see store.event_pages).
``…/events/stream`` is the same read as server-sent events, followed live:
each event is one message whose id is its ``next`` (a reconnecting
EventSource resumes from ``Last-Event-ID``), with a comment as heartbeat.

Access (EVENTS_READ): the whole log and the ``system`` stream are an
instance admin's; anyone else must name one app they may read events of
(``app=`` or ``stream=app-{id}``) and gets only that app's stream (403
otherwise). Every event is redacted (domain.redaction.public_json).
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from picloud.domain.access import Capability
from picloud.domain.event_query import (
    After,
    EventQuery,
    app_stream_id,
    decode_after,
    encode_after,
    parse_time,
    parse_types,
)
from picloud.domain.records import EventRecord
from picloud.errors import InvalidInput, NotFound
from picloud.events import event_types
from picloud.http._admin_executions import settle
from picloud.http._api import AppOf, endpoint
from picloud.http._sse import follow_live, open_stream
from picloud.http.state import SERVICES

__all__ = ["EventList"]

_PAGE = 100
_MAX_PAGE = 1_000
_TAIL_BATCH = 500


class EventList(msgspec.Struct, frozen=True):
    items: list[EventRecord]
    next: str


async def _events_app(request: web.Request) -> str | None:
    """The app whose stream the request reads (``app=`` or ``stream=``);
    None for the system stream or the whole log (an admin's)."""
    store = request.app[SERVICES].store
    ref = request.query.get("app")
    if ref:
        app = await store.app(ref)
        return None if app is None else app.id
    app_id = app_stream_id(request.query.get("stream", ""))
    if app_id is None:
        return None
    app = await store.app(app_id)
    return None if app is None or app.id != app_id else app.id


EVENTS_APP = AppOf("app", _events_app, in_query=("app", "stream"))


async def _query(request: web.Request) -> EventQuery:
    params = request.query
    stream = params.get("stream") or None
    ref = params.get("app")
    if ref:
        app = await request.app[SERVICES].store.app(ref)
        if app is None:
            raise NotFound(f"no app {ref[:80]!r}")
        if stream is not None and stream != f"app-{app.id}":
            raise InvalidInput("app and stream name different streams; give one")
        stream = f"app-{app.id}"
    since = params.get("since")
    until = params.get("until")
    return EventQuery(
        streams=None if stream is None else (stream,),
        types=parse_types(params.getall("type", []), set(event_types())),
        since=None if not since else parse_time(since),
        until=None if not until else parse_time(until),
    )


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if not raw:
        return _PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_PAGE:
        raise InvalidInput(f"limit must be an integer from 1 to {_MAX_PAGE}")
    return int(raw)


@endpoint(
    "GET",
    "/api/v1/admin/events",
    needs=Capability.EVENTS_READ,
    summary="Read the event log in the global order "
    "(?after=&stream=&app=&type=&since=&until=&limit=); go on from next",
    answer=EventList,
    app_of=EVENTS_APP,
)
async def list_events(request: web.Request) -> EventList:
    query = await _query(request)
    if query.streams is not None and (app_id := app_stream_id(query.streams[0])):
        await settle(request, app_id)  # the records of runs that answered
    after = decode_after(request.query.get("after"))
    page = await request.app[SERVICES].db.events.page(query, after, _limit(request))
    return EventList(items=page.events, next=encode_after(page.after))


@endpoint(
    "GET",
    "/api/v1/admin/events/stream",
    needs=Capability.EVENTS_READ,
    stream=True,
    summary="Follow the event log live as server-sent events (the filters of "
    "/events; without after, from now on; resumes from Last-Event-ID)",
    app_of=EVENTS_APP,
)
async def stream_events(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    settings = services.settings
    query = await _query(request)
    token = request.query.get("after") or request.headers.get("Last-Event-ID")
    after = decode_after(token) if token else await services.db.events.end()
    response = await open_stream(request)
    pages = services.db.events.follow(
        query, after, limit=_TAIL_BATCH, poll_s=settings.events_tail_poll_ms / 1000
    )
    chunks = (_messages(page.events, page.places) async for page in pages)
    await follow_live(request, response, chunks)
    return response


def _messages(events: list[EventRecord], places: list[After]) -> bytes:
    encode = msgspec.json.encode
    return b"".join(
        b"id: %s\ndata: %s\n\n" % (encode_after(place).encode(), encode(event))
        for event, place in zip(events, places, strict=True)
    )
