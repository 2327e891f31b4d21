"""Admin API: apps (SPEC.md §9)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from picloud.domain.access import Capability
from picloud.domain.records import AppRecord
from picloud.domain.system import CreateApp, DeleteApp, UpdateApp
from picloud.errors import InvalidInput
from picloud.http._api import endpoint, not_found
from picloud.http._auth import principal_of, readable_apps
from picloud.http._fields import Slug
from picloud.http.state import SERVICES, command_meta

__all__ = [
    "AppList",
    "AppSummary",
    "CreateAppBody",
    "UpdateAppBody",
    "app_summaries",
    "routing_sees_system",
]

_ROUTING_WAIT_S = 5.0

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class CreateAppBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    slug: Slug
    name: Name


class UpdateAppBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    slug: Slug | None = None
    name: Name | None = None


class AppSummary(AppRecord, frozen=True, kw_only=True):
    """An app as the apps list shows it."""

    dead_letters_unresolved: int
    """Its dead letters neither resolved nor replayed (the dashboard's badge)."""


class AppList(msgspec.Struct, frozen=True):
    items: list[AppSummary]


@endpoint(
    "POST",
    "/api/v1/admin/apps",
    needs=Capability.APP_CREATE,
    summary="Create an app; its creator becomes its owner",
    answer=AppRecord,
    status=201,
)
async def create_app(request: web.Request, body: CreateAppBody) -> AppRecord:
    services = request.app[SERVICES]
    owner = principal_of(request).user_id
    command = CreateApp(slug=body.slug, name=body.name, owner=owner)
    app = await services.control.execute_as(AppRecord, command, command_meta(request))
    await routing_sees_system(request)
    return app


@endpoint(
    "GET",
    "/api/v1/admin/apps",
    needs=Capability.SIGNED_IN,
    summary="List the apps the caller may read",
    answer=AppList,
)
async def list_all_apps(request: web.Request) -> AppList:
    return AppList(items=await app_summaries(request))


async def app_summaries(request: web.Request) -> list[AppSummary]:
    """The apps the caller may read, by slug, with their open dead letters."""
    apps = await readable_apps(request)
    counts = await request.app[SERVICES].store.open_dead_letter_counts()
    return [
        AppSummary(
            **msgspec.structs.asdict(app),
            dead_letters_unresolved=counts.get(app.id, 0),
        )
        for app in apps
    ]


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}",
    needs=Capability.APP_READ,
    summary="Get an app",
    answer=AppRecord,
)
async def get_one_app(request: web.Request) -> AppRecord:
    return await app_or_404(request)


@endpoint(
    "PATCH",
    "/api/v1/admin/apps/{app}",
    needs=Capability.APP_WRITE,
    summary="Change an app's slug or name",
    answer=AppRecord,
)
async def update_app(request: web.Request, body: UpdateAppBody) -> AppRecord:
    if body.slug is None and body.name is None:
        raise InvalidInput("give a slug, a name, or both")
    app = await app_or_404(request)
    command = UpdateApp(app=app.id, slug=body.slug, name=body.name)
    updated = await request.app[SERVICES].control.execute_as(
        AppRecord, command, command_meta(request)
    )
    await routing_sees_system(request)
    return updated


@endpoint(
    "DELETE",
    "/api/v1/admin/apps/{app}",
    needs=Capability.APP_DELETE,
    summary="Delete an app with its scripts, routes, triggers and data",
    status=204,
)
async def delete_app(request: web.Request) -> None:
    app = await app_or_404(request)
    services = request.app[SERVICES]
    await services.control.execute(DeleteApp(app=app.id), command_meta(request))
    await routing_sees_system(request)
    services.background(services.hosts.deactivate(app.id))


async def routing_sees_system(request: web.Request) -> None:
    """Wait until this front door's routing table has the system stream's newest
    event, so the caller's next request is routed by what it just changed."""
    services = request.app[SERVICES]
    head = await services.log.stream_head("system")
    if head is not None:
        services.log.signals.signal()
        await services.routing.caught_up(head.txid, head.position, _ROUTING_WAIT_S)


async def app_or_404(request: web.Request) -> AppRecord:
    """The app named by the ``{app}`` path segment (its id or its slug)."""
    ref = request.match_info["app"]
    app = await request.app[SERVICES].store.app(ref)
    if app is None:
        raise not_found("app", ref)
    return app
