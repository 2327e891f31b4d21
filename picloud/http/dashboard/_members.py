"""An app's members (owners set roles) and the API keys bound to it (create,
shown once; revoke). Each button does what its admin API endpoint does."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from picloud.domain.access import ALL_SCOPES, Capability, Role
from picloud.domain.records import KeyRecord
from picloud.errors import InvalidInput
from picloud.http._admin_apps import app_or_404
from picloud.http._admin_identity import (
    remove_member,
    revoke_any_key,
    set_member,
    set_role,
)
from picloud.http._api import ENDPOINTS, convert_body
from picloud.http._auth import principal_of
from picloud.http._auth_api import CreateKeyBody, create_own_key, revoke_own_key
from picloud.http.dashboard._context import app_context
from picloud.http.dashboard._render import render
from picloud.http.dashboard._table import Form, action, page
from picloud.http.state import SERVICES

__all__: list[str] = []

ROLES = tuple(r.value for r in Role)
SCOPES = tuple(sorted(s.value for s in ALL_SCOPES))


async def _keys(
    request: web.Request, app_id: str
) -> tuple[list[KeyRecord], dict[str, str]]:
    """The keys bound to the app that the viewer may see, as the API shows
    them: an instance admin every user's, anyone else their own; and the
    names of their owners."""
    store = request.app[SERVICES].store
    me = principal_of(request)
    if me.is_admin:
        users = {u.id: u.username for u in await store.users()}
        return await store.app_keys(app_id), users
    own = [k for k in await store.keys(me.user_id) if k.app_id == app_id]
    return own, {me.user_id: me.username}


@page("/ui/apps/{app}/members", name="ui_members", needs=Capability.APP_READ)
async def members_page(request: web.Request) -> tuple[str, dict[str, Any]]:
    app = await app_or_404(request)
    keys, owners = await _keys(request, app.id)
    return "members.html", {
        **await app_context(request, app),
        "members": await request.app[SERVICES].store.members(app.id),
        "keys": keys,
        "owners": owners,
        "roles": ROLES,
        "scopes": SCOPES,
    }


def _members(request: web.Request, done: str) -> str:
    return f"/ui/apps/{request.match_info['app']}/members?done={done}"


@action(
    "/ui/apps/{app}/members",
    name="ui_set_member",
    api=ENDPOINTS.of(set_member),
    back=members_page,
)
async def set_member_form(request: web.Request, form: Form) -> str:
    app = await app_or_404(request)
    role = str(form.get("role", ""))
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    await set_role(request, app.id, str(form.get("username", "")).strip(), Role(role))
    return _members(request, "member_set")


@action(
    "/ui/apps/{app}/members/{user}/remove",
    name="ui_remove_member",
    api=ENDPOINTS.of(remove_member),
    back=members_page,
)
async def remove_member_form(request: web.Request, form: Form) -> str:
    await remove_member(request)
    return _members(request, "member_removed")


@action(
    "/ui/apps/{app}/keys",
    name="ui_create_key",
    api=ENDPOINTS.of(create_own_key),
    back=members_page,
)
async def create_key_form(request: web.Request, form: Form) -> web.Response:
    """The new key's secret, on this one answer only (never redirected to:
    a URL would keep it)."""
    app = await app_or_404(request)
    values = {
        "name": form.get("name", ""),
        "scopes": form.getall("scopes", []),
        "app": app.id,
    }
    created = await create_own_key(request, convert_body(values, CreateKeyBody))
    context = {**await app_context(request, app), "created": created}
    return await render(request, "key_created.html", context, status=201)


@action(
    "/ui/apps/{app}/keys/{id}/revoke",
    name="ui_revoke_own_key",
    api=ENDPOINTS.of(revoke_own_key),
    back=members_page,
)
async def revoke_own_key_form(request: web.Request, form: Form) -> str:
    await revoke_own_key(request)
    return _members(request, "key_revoked")


@action(
    "/ui/apps/{app}/keys/{id}/revoke-any",
    name="ui_revoke_any_key",
    api=ENDPOINTS.of(revoke_any_key),
    back=members_page,
)
async def revoke_any_key_form(request: web.Request, form: Form) -> str:
    await revoke_any_key(request)
    return _members(request, "key_revoked")
