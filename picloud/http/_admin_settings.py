"""Admin API: an app's settings, its CORS policy and the hosts ``http.fetch``
may reach. Changes are commands to the app's actor (events of its stream);
the front door's routing table follows the CORS policy from the log."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from picloud.domain.access import Capability
from picloud.domain.app_settings import MAX_ENTRIES, parse_host_list
from picloud.domain.commands import SetCors, SetFetchHosts
from picloud.domain.records import AppSettingsRecord
from picloud.events.app import CorsPolicy
from picloud.http._admin_apps import app_or_404
from picloud.http._admin_scripts import routing_sees, send
from picloud.http._api import endpoint
from picloud.http.state import SERVICES

__all__ = ["CorsBody", "FetchHostsBody"]

_List = Annotated[list[str], msgspec.Meta(max_length=MAX_ENTRIES)]


class CorsBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    origins: Annotated[list[str], msgspec.Meta(min_length=1, max_length=MAX_ENTRIES)]
    """``https://example.com`` (scheme, host and port) or ``*``."""
    methods: _List = []
    """Empty: whatever method a preflight asks for."""
    headers: _List = []
    max_age_s: Annotated[int, msgspec.Meta(ge=0, le=86_400)] = 600


class FetchHostsBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    allowed_hosts: _List
    """Host names, ``*.example.com`` for subdomains, or IP addresses."""


_SETTINGS = "/api/v1/admin/apps/{app}/settings"


@endpoint(
    "GET",
    _SETTINGS,
    needs=Capability.APP_READ,
    summary="The app's settings: CORS policy and the hosts http.fetch may reach",
    answer=AppSettingsRecord,
)
async def get_app_settings(request: web.Request) -> AppSettingsRecord:
    app = await app_or_404(request)
    services = request.app[SERVICES]
    cors, hosts = await services.store.app_settings(app.id)
    defaults = list(parse_host_list(services.settings.fetch_allowed_hosts))
    return AppSettingsRecord(
        app_id=app.id,
        cors=cors,
        fetch_allowed_hosts=hosts,
        fetch_hosts_in_force=defaults if hosts is None else hosts,
    )


@endpoint(
    "PUT",
    _SETTINGS + "/cors",
    needs=Capability.APP_WRITE,
    summary="Set the app's CORS policy (the front door answers preflights)",
    answer=AppSettingsRecord,
)
async def put_app_cors(request: web.Request, body: CorsBody) -> Any:
    app = await app_or_404(request)
    cors = CorsPolicy(
        origins=body.origins,
        methods=body.methods,
        headers=body.headers,
        max_age_s=body.max_age_s,
    )
    done = await send(request, app.id, SetCors(cors=cors))
    await routing_sees(request, done)  # the very next request sees it
    return done.result


@endpoint(
    "DELETE",
    _SETTINGS + "/cors",
    needs=Capability.APP_WRITE,
    summary="Remove the app's CORS policy (no cross-origin calls)",
    status=204,
)
async def delete_app_cors(request: web.Request) -> None:
    app = await app_or_404(request)
    await routing_sees(request, await send(request, app.id, SetCors(cors=None)))


@endpoint(
    "PUT",
    _SETTINGS + "/fetch",
    needs=Capability.APP_WRITE,
    summary="Set the hosts the app's http.fetch may reach (its allowlist)",
    answer=AppSettingsRecord,
)
async def put_app_fetch_hosts(request: web.Request, body: FetchHostsBody) -> Any:
    app = await app_or_404(request)
    command = SetFetchHosts(hosts=body.allowed_hosts)
    return (await send(request, app.id, command)).result


@endpoint(
    "DELETE",
    _SETTINGS + "/fetch",
    needs=Capability.APP_WRITE,
    summary="Drop the app's own fetch allowlist (the deployment's applies)",
    status=204,
)
async def delete_app_fetch_hosts(request: web.Request) -> None:
    app = await app_or_404(request)
    await send(request, app.id, SetFetchHosts(hosts=None))
