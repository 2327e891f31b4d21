"""Admin API: apps (SPEC.md §9)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from picloud.actors.control import CreateApp, DeleteApp, UpdateApp
from picloud.errors import InvalidInput, NotFound
from picloud.http.api import endpoint
from picloud.http.state import SERVICES, command_meta
from picloud.store.apps import AppRecord, get_app, list_apps

__all__ = ["AppList", "CreateAppBody", "UpdateAppBody"]

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class CreateAppBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    slug: str
    name: Name


class UpdateAppBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    slug: str | None = None
    name: Name | None = None


class AppList(msgspec.Struct, frozen=True):
    items: list[AppRecord]


@endpoint(
    "POST",
    "/api/v1/admin/apps",
    needs="app:create",
    summary="Create an app",
    answer=AppRecord,
    status=201,
)
async def create_app(request: web.Request, body: CreateAppBody) -> AppRecord | None:
    services = request.app[SERVICES]
    command = CreateApp(slug=body.slug, name=body.name)
    return await services.control.execute(command, command_meta(request))


@endpoint(
    "GET", "/api/v1/admin/apps", needs="app:list", summary="List apps", answer=AppList
)
async def list_all_apps(request: web.Request) -> AppList:
    return AppList(items=await list_apps(request.app[SERVICES].pool))


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}",
    needs="app:read",
    summary="Get an app",
    answer=AppRecord,
)
async def get_one_app(request: web.Request) -> AppRecord:
    return await app_or_404(request)


@endpoint(
    "PATCH",
    "/api/v1/admin/apps/{app}",
    needs="app:write",
    summary="Change an app's slug or name",
    answer=AppRecord,
)
async def update_app(request: web.Request, body: UpdateAppBody) -> AppRecord | None:
    if body.slug is None and body.name is None:
        raise InvalidInput("give a slug, a name, or both")
    app = await app_or_404(request)
    command = UpdateApp(app=app.id, slug=body.slug, name=body.name)
    return await request.app[SERVICES].control.execute(command, command_meta(request))


@endpoint(
    "DELETE",
    "/api/v1/admin/apps/{app}",
    needs="app:delete",
    summary="Delete an app with its scripts, routes, triggers and data",
    status=204,
)
async def delete_app(request: web.Request) -> None:
    app = await app_or_404(request)
    await request.app[SERVICES].control.execute(
        DeleteApp(app=app.id), command_meta(request)
    )


async def app_or_404(request: web.Request) -> AppRecord:
    """The app named by the ``{app}`` path segment (its id or its slug)."""
    ref = request.match_info["app"]
    app = await get_app(request.app[SERVICES].pool, ref)
    if app is None:
        raise NotFound(f"no app {ref[:80]!r}")
    return app
