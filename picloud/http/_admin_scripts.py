"""Admin API: scripts, routes and the execution log of an app (SPEC.md §9).

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
from picloud.domain.records import ExecutionRecord, RouteRecord, ScriptRecord
from picloud.errors import ActorUnavailable, InvalidInput, NotFound
from picloud.events.app import DispatchMode, ScriptKind
from picloud.http._admin_apps import app_or_404
from picloud.http._api import endpoint
from picloud.http.state import SERVICES, command_meta

__all__ = ["app_of_route", "app_of_script", "send"]

_ROUTING_WAIT_S = 5.0
_PAGE = 50
_MAX_PAGE = 500

Source = Annotated[str, msgspec.Meta(max_length=256 * 1024)]


class CreateScriptBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    source: Source
    kind: ScriptKind = "endpoint"


class UpdateScriptBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    source: Source


class CreateRouteBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    method: str
    path: str
    dispatch_mode: DispatchMode = "sync"


class ScriptList(msgspec.Struct, frozen=True):
    items: list[ScriptRecord]


class RouteList(msgspec.Struct, frozen=True):
    items: list[RouteRecord]


class ExecutionList(msgspec.Struct, frozen=True):
    items: list[ExecutionRecord]
    cursor: str | None


async def send(request: web.Request, app_id: str, command: Command) -> Done:
    """Send an admin command to the app's actor; raise its error, return Done."""
    services = request.app[SERVICES]
    meta = command_meta(request)
    command = msgspec.structs.replace(
        command, idempotency_key=meta.idempotency_key, actor=meta.actor
    )
    reply = await services.hosts.call(
        app_id, command, services.settings.sync_timeout_ms / 1000
    )
    if isinstance(reply, Failure):
        unwrap(reply)
    if not isinstance(reply, Done):
        raise ActorUnavailable("the app answered an admin command unexpectedly")
    return reply


async def _routing_sees(request: web.Request, done: Done) -> None:
    services = request.app[SERVICES]
    services.log.signals.signal()
    await services.routing.caught_up(done.txid, done.position, _ROUTING_WAIT_S)


async def app_of_script(request: web.Request) -> str | None:
    script = await request.app[SERVICES].store.script(request.match_info["id"])
    return None if script is None else script.app_id


async def app_of_route(request: web.Request) -> str | None:
    route = await request.app[SERVICES].store.route(request.match_info["id"])
    return None if route is None else route.app_id


async def _script_or_404(request: web.Request) -> ScriptRecord:
    script = await request.app[SERVICES].store.script(request.match_info["id"])
    if script is None:
        raise NotFound(f"no script {request.match_info['id'][:80]!r}")
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
    app_of=app_of_script,
)
async def get_one_script(request: web.Request) -> ScriptRecord:
    return await _script_or_404(request)


@endpoint(
    "PUT",
    "/api/v1/admin/scripts/{id}",
    needs=Capability.SCRIPT_WRITE,
    summary="Replace a script's source (the next request runs it)",
    answer=ScriptRecord,
    app_of=app_of_script,
)
async def update_script(request: web.Request, body: UpdateScriptBody) -> Any:
    script = await _script_or_404(request)
    command = SaveScript(script_id=script.id, source=body.source)
    return (await send(request, script.app_id, command)).result


@endpoint(
    "DELETE",
    "/api/v1/admin/scripts/{id}",
    needs=Capability.SCRIPT_WRITE,
    summary="Delete a script and its routes (a module others import: 409, "
    "unless ?force=true)",
    status=204,
    app_of=app_of_script,
)
async def delete_script(request: web.Request) -> None:
    script = await _script_or_404(request)
    force = _bool_param(request.query.get("force"), "force")
    command = DeleteScript(script_id=script.id, force=force)
    done = await send(request, script.app_id, command)
    await _routing_sees(request, done)


# -- routes -------------------------------------------------------------------------


@endpoint(
    "POST",
    "/api/v1/admin/scripts/{id}/routes",
    needs=Capability.SCRIPT_WRITE,
    summary="Route an HTTP method and path to an endpoint script",
    answer=RouteRecord,
    status=201,
    app_of=app_of_script,
)
async def create_route(request: web.Request, body: CreateRouteBody) -> Any:
    script = await _script_or_404(request)
    command = AddRoute(
        script_id=script.id,
        method=body.method,
        path=body.path,
        dispatch_mode=body.dispatch_mode,
    )
    done = await send(request, script.app_id, command)
    await _routing_sees(request, done)
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
    app_of=app_of_route,
)
async def delete_route(request: web.Request) -> None:
    route = await request.app[SERVICES].store.route(request.match_info["id"])
    if route is None:
        raise NotFound(f"no route {request.match_info['id'][:80]!r}")
    done = await send(request, route.app_id, RemoveRoute(route_id=route.id))
    await _routing_sees(request, done)


# -- executions ---------------------------------------------------------------------


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/executions",
    needs=Capability.APP_READ,
    summary="The execution log, newest first (?status=ok|error&cursor=&limit=)",
    answer=ExecutionList,
)
async def list_app_executions(request: web.Request) -> ExecutionList:
    app = await app_or_404(request)
    query = request.query
    status = query.get("status") or None
    if status not in (None, "ok", "error"):
        raise InvalidInput("status must be ok or error")
    before = _int_param(query.get("cursor"), "cursor")
    limit = _int_param(query.get("limit"), "limit") or _PAGE
    if not 1 <= limit <= _MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {_MAX_PAGE}")
    items, after = await request.app[SERVICES].store.executions(
        app.id, status=status, before=before, limit=limit
    )
    return ExecutionList(items=items, cursor=None if after is None else str(after))


def _bool_param(value: str | None, name: str) -> bool:
    if value is None or value in ("", "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise InvalidInput(f"{name} must be true or false")


def _int_param(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise InvalidInput(f"{name} must be a non-negative integer")
    return int(value)
