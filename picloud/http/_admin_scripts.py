"""Admin API: scripts and routes of an app (SPEC.md §9; the execution log is
:mod:`picloud.http._admin_executions`).

Writes are commands to the app's actor, answered once durable; reads come
from the projections, which the same transaction wrote. A route change is
also awaited in this front door's routing table before the answer, so the
very next request sees it.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from picloud.actors.protocol import Done, Failure, unwrap
from picloud.domain.access import Capability
from picloud.domain.commands import (
    AddRoute,
    Command,
    DeleteScript,
    RemoveRoute,
    SaveScript,
)
from picloud.domain.records import RouteRecord, ScriptRecord
from picloud.errors import ActorUnavailable
from picloud.events.app import DispatchMode, ScriptKind
from picloud.http._admin_apps import app_or_404
from picloud.http._api import AppOf, endpoint, not_found
from picloud.http._fields import RetryBody, ScriptName
from picloud.http._params import flag, query_of
from picloud.http.state import SERVICES, command_meta

__all__ = [
    "ROUTE_APP",
    "SCRIPT_APP",
    "routing_sees",
    "script_or_404",
    "send",
]

_ROUTING_WAIT_S = 5.0

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
