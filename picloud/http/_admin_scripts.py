"""Admin API: scripts, routes and the execution log of an app (SPEC.md §9).

Writes are commands to the app's actor, answered once durable; reads come
from the projections, which the same transaction wrote. A route change is
also awaited in this front door's routing table before the answer, so the
very next request sees it.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
from aiohttp import web

from picloud.actors.protocol import Done, Failure, failure_of, unwrap
from picloud.domain.access import Capability
from picloud.domain.commands import (
    AddRoute,
    Command,
    DeleteScript,
    RemoveRoute,
    SaveScript,
    Settle,
)
from picloud.domain.records import (
    ExecutionDetail,
    ExecutionRecord,
    RouteRecord,
    ScriptRecord,
)
from picloud.errors import ActorUnavailable, PiCloudError
from picloud.events.app import DispatchMode, ScriptKind
from picloud.http._admin_apps import app_or_404
from picloud.http._api import AppOf, endpoint, not_found
from picloud.http._fields import RetryBody, ScriptName
from picloud.http._params import (
    choice,
    encode_position,
    flag,
    limit,
    moment,
    position_cursor,
    query_of,
    text,
)
from picloud.http.state import SERVICES, command_meta
from picloud.store import ExecutionFilter

__all__ = [
    "ROUTE_APP",
    "SCRIPT_APP",
    "routing_sees",
    "script_or_404",
    "send",
    "settle",
]

log = logging.getLogger(__name__)

_ROUTING_WAIT_S = 5.0
_SETTLE_WAIT_S = 2.0
_PAGE = 50
_MAX_PAGE = 500

Source = Annotated[str, msgspec.Meta(max_length=256 * 1024)]


class CreateScriptBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: ScriptName
    source: Source
    kind: ScriptKind = "endpoint"


class UpdateScriptBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    source: Source


class CreateRouteBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    method: str
    path: str
    dispatch_mode: DispatchMode = "sync"
    capabilities: list[str] | None = None
    """What its script may do (as for triggers); absent: its app's KV and documents."""
    retry: RetryBody | None = None
    """An async route's retries; absent: the deployment's defaults."""


class ScriptList(msgspec.Struct, frozen=True):
    items: list[ScriptRecord]


class RouteList(msgspec.Struct, frozen=True):
    items: list[RouteRecord]


class ExecutionList(msgspec.Struct, frozen=True):
    items: list[ExecutionRecord]
    cursor: str | None


async def send(
    request: web.Request,
    app_id: str,
    command: Command,
    *,
    timeout_s: float | None = None,
) -> Done:
    """Send an admin command to the app's actor; raise its error, return Done.
    It may take ``timeout_s`` (default: ``sync_timeout_ms``)."""
    services = request.app[SERVICES]
    meta = command_meta(request)
    command = msgspec.structs.replace(
        command, idempotency_key=meta.idempotency_key, actor=meta.actor
    )
    if timeout_s is None:
        timeout_s = services.settings.sync_timeout_ms / 1000
    reply = await services.hosts.call(app_id, command, timeout_s)
    if isinstance(reply, Failure):
        unwrap(reply)
    if not isinstance(reply, Done):
        raise ActorUnavailable("the app answered an admin command unexpectedly")
    return reply


async def routing_sees(request: web.Request, done: Done) -> None:
    services = request.app[SERVICES]
    services.log.signals.signal()
    await services.routing.caught_up(done.txid, done.position, _ROUTING_WAIT_S)


async def _app_of_script(request: web.Request) -> str | None:
    script = await request.app[SERVICES].store.script(request.match_info["id"])
    return None if script is None else script.app_id


async def _app_of_route(request: web.Request) -> str | None:
    route = await request.app[SERVICES].store.route(request.match_info["id"])
    return None if route is None else route.app_id


SCRIPT_APP = AppOf("script", _app_of_script)
ROUTE_APP = AppOf("route", _app_of_route)


async def script_or_404(request: web.Request) -> ScriptRecord:
    script = await request.app[SERVICES].store.script(request.match_info["id"])
    if script is None:
        raise not_found("script", request.match_info["id"])
    return script


# -- scripts ------------------------------------------------------------------------


@endpoint(
    "POST",
    "/api/v1/admin/apps/{app}/scripts",
    needs=Capability.SCRIPT_WRITE,
    summary="Create a script (Lua checked now, errors name the line)",
    answer=ScriptRecord,
    status=201,
)
async def create_script(request: web.Request, body: CreateScriptBody) -> Any:
    app = await app_or_404(request)
    command = SaveScript(name=body.name, kind=body.kind, source=body.source)
    return (await send(request, app.id, command)).result


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/scripts",
    needs=Capability.SCRIPT_READ,
    summary="List an app's scripts",
    answer=ScriptList,
)
async def list_app_scripts(request: web.Request) -> ScriptList:
    app = await app_or_404(request)
    return ScriptList(items=await request.app[SERVICES].store.scripts(app.id))


@endpoint(
    "GET",
    "/api/v1/admin/scripts/{id}",
    needs=Capability.SCRIPT_READ,
    summary="Get a script with its source, imports and users",
    answer=ScriptRecord,
    app_of=SCRIPT_APP,
)
async def get_one_script(request: web.Request) -> ScriptRecord:
    return await script_or_404(request)


@endpoint(
    "PUT",
    "/api/v1/admin/scripts/{id}",
    needs=Capability.SCRIPT_WRITE,
    summary="Replace a script's source (the next request runs it)",
    answer=ScriptRecord,
    app_of=SCRIPT_APP,
)
async def update_script(request: web.Request, body: UpdateScriptBody) -> Any:
    script = await script_or_404(request)
    command = SaveScript(script_id=script.id, source=body.source)
    return (await send(request, script.app_id, command)).result


@endpoint(
    "DELETE",
    "/api/v1/admin/scripts/{id}",
    needs=Capability.SCRIPT_WRITE,
    summary="Delete a script and its routes (a module others import: 409, "
    "unless ?force=true)",
    status=204,
    app_of=SCRIPT_APP,
    query=(flag("force", "delete even if other scripts import it"),),
)
async def delete_script(request: web.Request) -> None:
    script = await script_or_404(request)
    command = DeleteScript(script_id=script.id, force=query_of(request)["force"])
    done = await send(request, script.app_id, command)
    await routing_sees(request, done)


# -- routes -------------------------------------------------------------------------


@endpoint(
    "POST",
    "/api/v1/admin/scripts/{id}/routes",
    needs=Capability.SCRIPT_WRITE,
    summary="Route an HTTP method and path to an endpoint script",
    answer=RouteRecord,
    status=201,
    app_of=SCRIPT_APP,
)
async def create_route(request: web.Request, body: CreateRouteBody) -> Any:
    script = await script_or_404(request)
    command = AddRoute(
        script_id=script.id,
        method=body.method,
        path=body.path,
        dispatch_mode=body.dispatch_mode,
        capabilities=body.capabilities,
        retry=None if body.retry is None else body.retry.policy(),
    )
    done = await send(request, script.app_id, command)
    await routing_sees(request, done)
    return done.result


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/routes",
    needs=Capability.SCRIPT_READ,
    summary="List an app's routes",
    answer=RouteList,
)
async def list_app_routes(request: web.Request) -> RouteList:
    app = await app_or_404(request)
    return RouteList(items=await request.app[SERVICES].store.routes(app.id))


@endpoint(
    "DELETE",
    "/api/v1/admin/routes/{id}",
    needs=Capability.SCRIPT_WRITE,
    summary="Remove a route",
    status=204,
    app_of=ROUTE_APP,
)
async def delete_route(request: web.Request) -> None:
    route = await request.app[SERVICES].store.route(request.match_info["id"])
    if route is None:
        raise not_found("route", request.match_info["id"])
    done = await send(request, route.app_id, RemoveRoute(route_id=route.id))
    await routing_sees(request, done)


# -- executions ---------------------------------------------------------------------


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
        choice("status", ["ok", "error"], "only executions that ended so"),
        text("script", "only runs of this script (its id)", max_length=200),
        text(
            "trigger",
            "only runs whose trigger label starts with this: route:, async:, "
            "trigger:, trigger:schedule:, trigger:kv:<trigger id>…",
            max_length=300,
        ),
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
