"""Scripts: the create and edit forms (kind dropdown, source editor with the
line a validation error names), the script page (source, imports, used by,
its routes), deleting; adding and removing routes."""

from __future__ import annotations

from typing import Any, get_args

from aiohttp import web

from picloud.domain.access import Capability
from picloud.domain.records import ScriptRecord
from picloud.errors import NotFound
from picloud.events.app import DispatchMode, ScriptKind
from picloud.http._admin_apps import app_or_404
from picloud.http._admin_scripts import (
    SCRIPT_APP,
    CreateRouteBody,
    CreateScriptBody,
    UpdateScriptBody,
    create_route,
    create_script,
    delete_route,
    delete_script,
    update_script,
)
from picloud.http._api import ENDPOINTS, convert_body
from picloud.http.dashboard._context import app_context
from picloud.http.dashboard._forms import retry_of
from picloud.http.dashboard._table import Form, action, page
from picloud.http.state import SERVICES

__all__: list[str] = []

KINDS = get_args(ScriptKind)
MODES = get_args(DispatchMode)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


async def _script(request: web.Request) -> ScriptRecord:
    script = await request.app[SERVICES].store.script(request.match_info["id"])
    if script is None:
        raise NotFound(f"no script {request.match_info['id'][:80]!r}")
    return script


async def _script_context(request: web.Request) -> dict[str, Any]:
    """The script, its app's context, its routes and its imports' ids."""
    script = await _script(request)
    store = request.app[SERVICES].store
    app = await store.app(script.app_id)
    if app is None:
        raise NotFound("the script's app is gone")
    scripts = await store.scripts(app.id)
    by_name = {s.name: s for s in scripts}
    routes = [r for r in await store.routes(app.id) if r.script_id == script.id]
    return {
        **await app_context(request, app),
        "script": script,
        "by_name": by_name,
        "routes": routes,
        "methods": METHODS,
        "modes": MODES,
    }


@page("/ui/apps/{app}/scripts/new", name="ui_new_script", needs=Capability.SCRIPT_WRITE)
async def new_script_page(request: web.Request) -> tuple[str, dict[str, Any]]:
    app = await app_or_404(request)
    context = await app_context(request, app)
    return "script_new.html", {**context, "kinds": KINDS}


@action(
    "/ui/apps/{app}/scripts",
    name="ui_create_script",
    api=ENDPOINTS.of(create_script),
    back=new_script_page,
)
async def create_script_form(request: web.Request, form: Form) -> str:
    values = {k: form.get(k, "") for k in ("name", "kind", "source")}
    body = convert_body(_lf(values), CreateScriptBody)
    made = await create_script(request, body)  # the actor's answer: a plain dict
    return f"/ui/scripts/{made['id']}?done=script_saved"


@page(
    "/ui/scripts/{id}",
    name="ui_script",
    needs=Capability.SCRIPT_READ,
    app_of=SCRIPT_APP,
)
async def script_page(request: web.Request) -> tuple[str, dict[str, Any]]:
    return "script.html", await _script_context(request)


@page(
    "/ui/scripts/{id}/edit",
    name="ui_edit_script",
    needs=Capability.SCRIPT_WRITE,
    app_of=SCRIPT_APP,
)
async def edit_script_page(request: web.Request) -> tuple[str, dict[str, Any]]:
    return "script_edit.html", await _script_context(request)


@action(
    "/ui/scripts/{id}",
    name="ui_update_script",
    api=ENDPOINTS.of(update_script),
    back=edit_script_page,
)
async def update_script_form(request: web.Request, form: Form) -> str:
    body = convert_body(_lf({"source": form.get("source", "")}), UpdateScriptBody)
    await update_script(request, body)
    return f"/ui/scripts/{request.match_info['id']}?done=script_saved"


@action(
    "/ui/scripts/{id}/delete",
    name="ui_delete_script",
    api=ENDPOINTS.of(delete_script),
    back=script_page,
)
async def delete_script_form(request: web.Request, form: Form) -> str:
    script = await _script(request)
    await delete_script(request)
    return f"/ui/apps/{script.app_id}?done=script_deleted"


@action(
    "/ui/scripts/{id}/routes",
    name="ui_add_route",
    api=ENDPOINTS.of(create_route),
    back=script_page,
)
async def add_route_form(request: web.Request, form: Form) -> str:
    values = {k: form.get(k, "") for k in ("method", "path", "dispatch_mode")}
    values["retry"] = retry_of(form)
    await create_route(request, convert_body(values, CreateRouteBody))
    return f"/ui/scripts/{request.match_info['id']}?done=route_added#routes"


@action(
    "/ui/routes/{id}/delete", name="ui_remove_route", api=ENDPOINTS.of(delete_route)
)
async def remove_route_form(request: web.Request, form: Form) -> str:
    route = await request.app[SERVICES].store.route(request.match_info["id"])
    await delete_route(request)  # NotFound when there is no such route
    script_id = "" if route is None else route.script_id
    return f"/ui/scripts/{script_id}?done=route_removed#routes"


def _lf(values: dict[str, Any]) -> dict[str, Any]:
    """A browser sends a textarea's line breaks as CRLF; Lua source keeps LF."""
    source = values.get("source")
    if isinstance(source, str):
        values["source"] = source.replace("\r\n", "\n")
    return values
