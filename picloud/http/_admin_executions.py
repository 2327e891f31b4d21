"""Admin API: the execution log of an app (SPEC.md §9): the list, one run,
and the list followed live as server-sent events.

``…/executions/stream`` sends each run as a message whose data is the
execution record the list answers, and each condition the log records beside
the runs as a message of its own event name (``skipped``, ``throttled``,
``abandoned``, ``dead_letter``, ``host_killed``, ``quarantined``) whose data
is an :class:`~picloud.domain.records.ExecutionNotice` (see
:mod:`picloud.store.execution_tail`). Every message's id is the place to
resume from (``after=`` or ``Last-Event-ID``): nothing is skipped or repeated.
Without one, the tail starts after every run that answered before the
request (it settles the app first), so it shows only what happens next.
"""

from __future__ import annotations

import logging

import msgspec
from aiohttp import web

from picloud.actors.protocol import Failure, failure_of
from picloud.domain.access import Capability
from picloud.domain.commands import Settle
from picloud.domain.event_query import decode_after, encode_after
from picloud.domain.records import ExecutionDetail, ExecutionRecord
from picloud.errors import PiCloudError
from picloud.http._admin_apps import app_or_404
from picloud.http._api import endpoint, not_found
from picloud.http._params import (
    Param,
    choice,
    encode_position,
    limit,
    moment,
    position_cursor,
    query_of,
    text,
)
from picloud.http._sse import follow_live, open_stream
from picloud.http.state import SERVICES
from picloud.store import ExecutionFilter, TailItem

__all__ = ["ExecutionList", "settle"]

log = logging.getLogger(__name__)

_SETTLE_WAIT_S = 2.0
_PAGE = 50
_MAX_PAGE = 500
_TAIL_BATCH = 500


class ExecutionList(msgspec.Struct, frozen=True):
    items: list[ExecutionRecord]
    cursor: str | None


def _status() -> Param:
    return choice("status", ["ok", "error"], "only executions that ended so")


def _script() -> Param:
    return text("script", "only runs of this script (its id)", max_length=200)


def _trigger() -> Param:
    return text(
        "trigger",
        "only runs whose trigger label starts with this: route:, async:, "
        "trigger:, trigger:schedule:, trigger:kv:<trigger id>, throttled:…",
        max_length=300,
    )


def _after() -> Param:
    return Param(
        "after",
        "resume after this message id (as Last-Event-ID does); absent: from now",
        {"type": "string", "maxLength": 200},
        decode_after,
    )


async def settle(request: web.Request, app_id: str) -> None:
    """Wait until the app's actor has appended every execution record it
    holds (read-only runs answer before their record is durable), so the
    log lists every run that answered before this request. Best effort: a
    host that cannot say leaves the list as the database has it."""
    services = request.app[SERVICES]
    try:
        reply = await services.hosts.call(app_id, Settle(), _SETTLE_WAIT_S)
    except PiCloudError as e:
        reply = failure_of(e)
    if isinstance(reply, Failure):
        log.info("execution log of %s read unsettled: %s", app_id, reply.message)


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/executions",
    needs=Capability.APP_READ,
    summary="The execution log, newest first, filtered (?status=&script=&trigger="
    "&since=&until=&cursor=&limit=; an unknown filter is a 400)",
    answer=ExecutionList,
    query=(
        _status(),
        _script(),
        _trigger(),
        moment("since", "only runs started at or after this time"),
        moment("until", "only runs started before this time"),
        position_cursor(),
        limit(default=_PAGE, maximum=_MAX_PAGE),
    ),
    strict_query=True,
)
async def list_app_executions(request: web.Request) -> ExecutionList:
    app = await app_or_404(request)
    query = query_of(request)
    where = ExecutionFilter(
        status=query["status"],
        script_id=query["script"] or None,
        trigger=query["trigger"] or None,
        since=query["since"],
        until=query["until"],
    )
    await settle(request, app.id)
    items, after = await request.app[SERVICES].store.executions(
        app.id, where=where, before=query["cursor"], limit=query["limit"]
    )
    return ExecutionList(items=items, cursor=encode_position(after))


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/executions/stream",
    needs=Capability.APP_READ,
    stream=True,
    summary="Follow the execution log live as server-sent events: runs as "
    "messages, and skipped, throttled, abandoned, dead_letter, host_killed and "
    "quarantined notices as events of those names (?status=&script=&trigger="
    "&after=; without after, from now on; resumes from Last-Event-ID)",
    query=(_status(), _script(), _trigger(), _after()),
    strict_query=True,
)
async def stream_app_executions(request: web.Request) -> web.StreamResponse:
    app = await app_or_404(request)
    services = request.app[SERVICES]
    tail = services.db.execution_tail
    query = query_of(request)
    where = ExecutionFilter(
        status=query["status"],
        script_id=query["script"] or None,
        trigger=query["trigger"] or None,
    )
    after = query["after"]
    resume = request.headers.get("Last-Event-ID")
    if after is None and resume:
        after = decode_after(resume)
    if after is None:
        await settle(request, app.id)  # runs that answered already are not new
        after = await tail.end()
    response = await open_stream(request)
    batches = tail.follow(
        app.id,
        where,
        after,
        limit=_TAIL_BATCH,
        poll_s=services.settings.events_tail_poll_ms / 1000,
    )
    await follow_live(request, response, (_messages(b) async for b in batches))
    return response


def _messages(items: list[TailItem]) -> bytes:
    encode = msgspec.json.encode
    out = []
    for record, place in items:
        out.append(b"id: %s\n" % encode_after(place).encode())
        if not isinstance(record, ExecutionRecord):
            out.append(b"event: %s\n" % record.kind.encode())
        out.append(b"data: %s\n\n" % encode(record))
    return b"".join(out)


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/executions/{id}",
    needs=Capability.APP_READ,
    summary="One execution: its logs and error, every attempt of its delivery, "
    "and the dead letter it became if any (pending: accepted, not yet run)",
    answer=ExecutionDetail,
)
async def get_app_execution(request: web.Request) -> ExecutionDetail:
    app = await app_or_404(request)
    execution_id = request.match_info["id"]
    await settle(request, app.id)
    found = await request.app[SERVICES].store.execution(app.id, execution_id)
    if found is None:
        raise not_found("execution", execution_id)
    return found
