"""An app's settings page: its secrets (names and times; set by a form whose
value is never shown again, deleted), its CORS policy and the hosts its
``http.fetch`` may reach. Each button does what its admin API endpoint does."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from picloud.domain.access import Capability
from picloud.domain.app_settings import parse_host_list
from picloud.errors import InvalidInput
from picloud.http._admin_apps import app_or_404
from picloud.http._admin_secrets import (
    SecretBody,
    delete_secret,
    put_secret,
    set_secret,
)
from picloud.http._admin_settings import (
    CorsBody,
    FetchHostsBody,
    delete_app_cors,
    delete_app_fetch_hosts,
    put_app_cors,
    put_app_fetch_hosts,
)
from picloud.http._api import ENDPOINTS, convert_body
from picloud.http.dashboard._context import app_context
from picloud.http.dashboard._table import Form, action, page
from picloud.http.state import SERVICES

__all__: list[str] = []

_SEPARATORS = re.compile(r"[\s,]+")


def _words(form: Form, name: str) -> list[str]:
    """A field of a list: its entries separated by spaces, commas or lines."""
    return [w for w in _SEPARATORS.split(str(form.get(name, ""))) if w]


@page("/ui/apps/{app}/settings", name="ui_settings", needs=Capability.APP_READ)
async def settings_page(request: web.Request) -> tuple[str, dict[str, Any]]:
    app = await app_or_404(request)
    services = request.app[SERVICES]
    context = await app_context(request, app)
    secrets = None  # not shown to whom may not read scripts (a key's scope)
    if Capability.SCRIPT_READ in context["can"]:
        secrets = await services.store.secrets(app.id)
    cors, hosts = await services.store.app_settings(app.id)
    return "settings.html", {
        **context,
        "secrets": secrets,
        "cors": cors,
        "fetch_hosts": hosts,
        "deployment_hosts": list(
            parse_host_list(services.settings.fetch_allowed_hosts)
        ),
    }


def _settings(request: web.Request, done: str, where: str) -> str:
    return f"/ui/apps/{request.match_info['app']}/settings?done={done}#{where}"


@action(
    "/ui/apps/{app}/secrets",
    name="ui_set_secret",
    api=ENDPOINTS.of(put_secret),
    back=settings_page,
)
async def set_secret_form(request: web.Request, form: Form) -> str:
    app = await app_or_404(request)
    body = convert_body({"value": form.get("value", "")}, SecretBody)
    await set_secret(request, app.id, str(form.get("name", "")).strip(), body)
    return _settings(request, "secret_set", "secrets")


@action(
    "/ui/apps/{app}/secrets/{name}/delete",
    name="ui_delete_secret",
    api=ENDPOINTS.of(delete_secret),
    back=settings_page,
)
async def delete_secret_form(request: web.Request, form: Form) -> str:
    await delete_secret(request)
    return _settings(request, "secret_deleted", "secrets")


@action(
    "/ui/apps/{app}/settings/cors",
    name="ui_set_cors",
    api=ENDPOINTS.of(put_app_cors),
    back=settings_page,
)
async def set_cors_form(request: web.Request, form: Form) -> str:
    age = str(form.get("max_age_s", "")).strip() or "600"
    if not age.isdigit():
        raise InvalidInput("max age must be a whole number of seconds")
    values = {
        "origins": _words(form, "origins"),
        "methods": [m.upper() for m in _words(form, "methods")],
        "headers": _words(form, "headers"),
        "max_age_s": int(age),
    }
    await put_app_cors(request, convert_body(values, CorsBody))
    return _settings(request, "cors_set", "cors")


@action(
    "/ui/apps/{app}/settings/cors/delete",
    name="ui_delete_cors",
    api=ENDPOINTS.of(delete_app_cors),
    back=settings_page,
)
async def delete_cors_form(request: web.Request, form: Form) -> str:
    await delete_app_cors(request)
    return _settings(request, "cors_removed", "cors")


@action(
    "/ui/apps/{app}/settings/fetch",
    name="ui_set_fetch_hosts",
    api=ENDPOINTS.of(put_app_fetch_hosts),
    back=settings_page,
)
async def set_fetch_hosts_form(request: web.Request, form: Form) -> str:
    values = {"allowed_hosts": _words(form, "allowed_hosts")}
    await put_app_fetch_hosts(request, convert_body(values, FetchHostsBody))
    return _settings(request, "fetch_set", "fetch")


@action(
    "/ui/apps/{app}/settings/fetch/delete",
    name="ui_delete_fetch_hosts",
    api=ENDPOINTS.of(delete_app_fetch_hosts),
    back=settings_page,
)
async def delete_fetch_hosts_form(request: web.Request, form: Form) -> str:
    await delete_app_fetch_hosts(request)
    return _settings(request, "fetch_removed", "fetch")
