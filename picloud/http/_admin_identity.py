"""Admin API: users (instance admins) and an app's members (its owners).

Every change is a ControlPlane command, so it is an event on the ``system``
stream and its projection is current before the answer. Passwords are hashed
here, in the front door, and only the hash goes on. The user in a path is
named by id or username.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import msgspec
from aiohttp import web

from picloud.domain.access import Capability, Role
from picloud.domain.credentials import MAX_PASSWORD_LEN, hash_password
from picloud.domain.identity import (
    CreateUser,
    DeleteUser,
    RemoveMember,
    RevokeApiKey,
    SetMember,
    UpdateUser,
)
from picloud.domain.records import KeyRecord, MemberRecord, UserRecord
from picloud.errors import InvalidInput, NotFound
from picloud.http._admin_apps import app_or_404
from picloud.http._api import endpoint
from picloud.http._fields import Username
from picloud.http.state import SERVICES, command_meta

__all__ = [
    "CreateUserBody",
    "MemberList",
    "SetMemberBody",
    "UpdateUserBody",
    "UserList",
    "set_role",
]

Password = Annotated[str, msgspec.Meta(max_length=MAX_PASSWORD_LEN)]


class CreateUserBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    username: Username
    password: Password
    admin: bool = False

    def __repr__(self) -> str:  # keep the password out of any traceback or log
        return f"CreateUserBody(username={self.username!r}, admin={self.admin})"


class UpdateUserBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    admin: bool | None = None
    password: Password | None = None

    def __repr__(self) -> str:
        return f"UpdateUserBody(admin={self.admin})"


class SetMemberBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    role: Role


class UserList(msgspec.Struct, frozen=True):
    items: list[UserRecord]


class MemberList(msgspec.Struct, frozen=True):
    items: list[MemberRecord]


class UserKeyList(msgspec.Struct, frozen=True):
    items: list[KeyRecord]


async def _user_or_404(request: web.Request) -> UserRecord:
    ref = request.match_info["user"]
    user = await request.app[SERVICES].store.user(ref)
    if user is None:
        raise NotFound(f"no user {ref[:80]!r}")
    return user


# -- users ---------------------------------------------------------------------------


@endpoint(
    "GET",
    "/api/v1/admin/users",
    needs=Capability.USERS_MANAGE,
    summary="List users",
    answer=UserList,
)
async def list_all_users(request: web.Request) -> UserList:
    return UserList(items=await request.app[SERVICES].store.users())


@endpoint(
    "POST",
    "/api/v1/admin/users",
    needs=Capability.USERS_MANAGE,
    summary="Create a user (optionally an instance admin)",
    answer=UserRecord,
    status=201,
)
async def create_user(request: web.Request, body: CreateUserBody) -> UserRecord:
    hashed = await asyncio.to_thread(hash_password, body.password)
    command = CreateUser(username=body.username, password_hash=hashed, admin=body.admin)
    return await request.app[SERVICES].control.execute_as(
        UserRecord, command, command_meta(request)
    )


@endpoint(
    "GET",
    "/api/v1/admin/users/{user}",
    needs=Capability.USERS_MANAGE,
    summary="Get a user",
    answer=UserRecord,
)
async def get_one_user(request: web.Request) -> UserRecord:
    return await _user_or_404(request)


@endpoint(
    "PATCH",
    "/api/v1/admin/users/{user}",
    needs=Capability.USERS_MANAGE,
    summary="Make a user an admin or not, or set their password",
    answer=UserRecord,
)
async def update_user(request: web.Request, body: UpdateUserBody) -> UserRecord:
    if body.admin is None and body.password is None:
        raise InvalidInput("give admin, password, or both")
    user = await _user_or_404(request)
    hashed = None
    if body.password is not None:
        hashed = await asyncio.to_thread(hash_password, body.password)
    command = UpdateUser(user=user.id, admin=body.admin, password_hash=hashed)
    return await request.app[SERVICES].control.execute_as(
        UserRecord, command, command_meta(request)
    )


@endpoint(
    "DELETE",
    "/api/v1/admin/users/{user}",
    needs=Capability.USERS_MANAGE,
    summary="Delete a user with their memberships, keys and sessions",
    status=204,
)
async def delete_user(request: web.Request) -> None:
    user = await _user_or_404(request)
    await request.app[SERVICES].control.execute(
        DeleteUser(user=user.id), command_meta(request)
    )


@endpoint(
    "GET",
    "/api/v1/admin/users/{user}/keys",
    needs=Capability.USERS_MANAGE,
    summary="List a user's API keys (never their secrets)",
    answer=UserKeyList,
)
async def list_user_keys(request: web.Request) -> UserKeyList:
    user = await _user_or_404(request)
    return UserKeyList(items=await request.app[SERVICES].store.keys(user.id))


@endpoint(
    "DELETE",
    "/api/v1/admin/keys/{id}",
    needs=Capability.USERS_MANAGE,
    summary="Revoke anyone's API key; it stops working at once",
    status=204,
)
async def revoke_any_key(request: web.Request) -> None:
    command = RevokeApiKey(key=request.match_info["id"][:100])
    await request.app[SERVICES].control.execute(command, command_meta(request))


# -- members of an app --------------------------------------------------------------


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/members",
    needs=Capability.APP_READ,
    summary="List an app's members and their roles",
    answer=MemberList,
)
async def list_app_members(request: web.Request) -> MemberList:
    app = await app_or_404(request)
    return MemberList(items=await request.app[SERVICES].store.members(app.id))


@endpoint(
    "PUT",
    "/api/v1/admin/apps/{app}/members/{user}",
    needs=Capability.MEMBERS_MANAGE,
    summary="Give a user a role in the app (viewer, editor, owner)",
    answer=MemberRecord,
)
async def set_member(request: web.Request, body: SetMemberBody) -> MemberRecord:
    app = await app_or_404(request)
    return await set_role(request, app.id, request.match_info["user"], body.role)


async def set_role(
    request: web.Request, app_id: str, user_ref: str, role: Role
) -> MemberRecord:
    """Give the user named ``user_ref`` (id or username) ``role`` in the app."""
    user = await request.app[SERVICES].store.user(user_ref)
    if user is None:
        raise NotFound(f"no user {user_ref[:80]!r}")
    command = SetMember(app=app_id, user=user.id, role=role)
    return await request.app[SERVICES].control.execute_as(
        MemberRecord, command, command_meta(request)
    )


@endpoint(
    "DELETE",
    "/api/v1/admin/apps/{app}/members/{user}",
    needs=Capability.MEMBERS_MANAGE,
    summary="Remove a user from the app",
    status=204,
)
async def remove_member(request: web.Request) -> None:
    app = await app_or_404(request)
    user = await _user_or_404(request)
    await request.app[SERVICES].control.execute(
        RemoveMember(app=app.id, user=user.id), command_meta(request)
    )
