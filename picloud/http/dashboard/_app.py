"""An app's page: its scripts, routes, triggers (a schedule's times) with
their retry policies, and recent executions; and adding (any kind, a
schedule with its cron and zone) or removing a trigger."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from picloud.domain.access import Capability
from picloud.domain.records import ScriptRecord
from picloud.events.trigger_kinds import TRIGGER_KINDS
from picloud.http._admin_apps import app_or_404
from picloud.http._admin_triggers import (
    TRIGGER_APP,
    CreateScheduleBody,
    CreateTriggerBody,
    delete_trigger,
    trigger_endpoint,
)
from picloud.http._api import ENDPOINTS, Endpoint, convert_body
from picloud.http.dashboard._context import app_context
from picloud.http.dashboard._forms import retry_of
from picloud.http.dashboard._table import Form, action, page
from picloud.http.state import SERVICES

__all__ = ["app_page", "script_names"]

_RECENT = 10


async def script_names(request: web.Request, app_id: str) -> dict[str, str]:
    """Script id → name, to show names where records hold ids."""
    scripts = await request.app[SERVICES].store.scripts(app_id)
    return {s.id: s.name for s in scripts}


@page("/ui/apps/{app}", name="ui_app", needs=Capability.APP_READ)
async def app_page(request: web.Request) -> tuple[str, dict[str, Any]]:
    app = await app_or_404(request)
    store = request.app[SERVICES].store
    context = await app_context(request, app)
    can = context["can"]
    scripts: list[ScriptRecord] = []
    if Capability.SCRIPT_READ in can:
        scripts = await store.scripts(app.id)
    routes = await store.routes(app.id) if Capability.SCRIPT_READ in can else []
    triggers = await store.triggers(app.id) if Capability.TRIGGERS_READ in can else []
    executions, _ = await store.executions(app.id, before=None, limit=_RECENT)
    return "app.html", {
        **context,
        "scripts": scripts,
        "names": {s.id: s.name for s in scripts},
        "routes": routes,
        "triggers": triggers,
        "executions": executions,
        "kinds": list(TRIGGER_KINDS.values()),
        "kind_by_name": TRIGGER_KINDS,
    }


async def _trigger_api(request: web.Request, form: Form) -> Endpoint:
    return trigger_endpoint(request.match_info["kind"])


@action(
    "/ui/apps/{app}/triggers/{kind}",
    name="ui_add_trigger",
    api=_trigger_api,
    # Every kind's endpoint needs the same capability (checked by a test).
    needs=trigger_endpoint("kv").needs,
    back=app_page,
)
async def add_trigger(request: web.Request, form: Form) -> str:
    kind = request.match_info["kind"]
    entry = trigger_endpoint(kind)
    granted = str(form.get("capabilities", "")).split()
    common = {
        "script_id": form.get("script_id", ""),
        "capabilities": granted or None,
        "retry": retry_of(form),
    }
    body: CreateScheduleBody | CreateTriggerBody
    if TRIGGER_KINDS[kind].takes_schedule:
        when = {
            "cron": str(form.get("cron", "")).strip(),
            "timezone": str(form.get("timezone", "")).strip() or "UTC",
        }
        body = convert_body({**common, **when}, CreateScheduleBody)
    else:
        which = {
            "ops": form.getall("ops", []),
            "collection": form.get("collection") or None,
        }
        body = convert_body({**common, **which}, CreateTriggerBody)
    await entry.handler(request, body)
    return f"/ui/apps/{request.match_info['app']}?done=trigger_added#triggers"


@action(
    "/ui/triggers/{id}/delete",
    name="ui_remove_trigger",
    api=ENDPOINTS.of(delete_trigger),
)
async def remove_trigger(request: web.Request, form: Form) -> str:
    app_id = await TRIGGER_APP.find(request)
    await delete_trigger(request)
    return f"/ui/apps/{app_id}?done=trigger_removed#triggers"
