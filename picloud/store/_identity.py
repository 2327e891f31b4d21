"""Reads of the identity projections: users, memberships, API keys, principals.

Every read goes to the projection, never to a cache, so a revoked key, a
deleted user or a removed membership stops working with the next request, in
every process.
"""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
import msgspec

from picloud.domain.access import KeyGrant, Principal, Role, Scope
from picloud.domain.records import AppRecord, KeyRecord, MemberRecord, UserRecord
from picloud.store._errors import translate_errors

__all__ = [
    "LoginUser",
    "admin_exists",
    "apps_with_roles",
    "get_key",
    "get_user",
    "list_app_keys",
    "list_keys",
    "list_members",
    "list_users",
    "login_user",
    "principal_for_key",
    "principal_for_session",
    "role_in",
]

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection
# A scope a newer PiCloud wrote and this one does not know grants nothing.
_SCOPES = frozenset(s.value for s in Scope)


class LoginUser(msgspec.Struct, frozen=True, kw_only=True):
    """What a login needs; the hash never leaves the auth code."""

    id: str
    username: str
    password_hash: str


_USER = "SELECT id, username, is_admin AS admin, created_at, updated_at FROM users"
_KEY = (
    "SELECT k.id, k.user_id, k.name, k.prefix, k.scopes, k.app_id, k.created_at,"
    " k.revoked_at, u.last_used_at"
    " FROM api_keys k LEFT JOIN api_key_usage u ON u.key_id = k.id"
)


async def principal_for_key(db: Db, secret_hash: str) -> Principal | None:
    """The principal of an unrevoked key with this lookup hash, else None."""
    with translate_errors("authenticate key"):
        row = await db.fetchrow(
            "SELECT k.id, k.scopes, k.app_id, u.id AS user_id, u.username, u.is_admin"
            " FROM api_keys k JOIN users u ON u.id = k.user_id"
            " WHERE k.secret_hash = $1 AND k.revoked_at IS NULL",
            secret_hash,
        )
    if row is None:
        return None
    grant = KeyGrant(
        id=row["id"],
        scopes=frozenset(Scope(s) for s in row["scopes"] if s in _SCOPES),
        app_id=row["app_id"],
    )
    return Principal(
        user_id=row["user_id"],
        username=row["username"],
        is_admin=row["is_admin"],
        key=grant,
    )


async def principal_for_session(db: Db, token_hash: str) -> Principal | None:
    """The principal of an unexpired session with this token hash, else None."""
    with translate_errors("authenticate session"):
        row = await db.fetchrow(
            "SELECT u.id, u.username, u.is_admin FROM sessions s"
            " JOIN users u ON u.id = s.user_id"
            " WHERE s.token_hash = $1 AND s.expires_at > now()",
            token_hash,
        )
    if row is None:
        return None
    return Principal(
        user_id=row["id"], username=row["username"], is_admin=row["is_admin"]
    )


async def role_in(db: Db, app_id: str, user_id: str) -> Role | None:
    with translate_errors("read role"):
        role = await db.fetchval(
            "SELECT role FROM memberships WHERE app_id = $1 AND user_id = $2",
            app_id,
            user_id,
        )
    return None if role is None else Role(role)


async def apps_with_roles(db: Db, user_id: str) -> list[tuple[AppRecord, Role | None]]:
    """Every app with this user's role in it (None where not a member), by slug."""
    with translate_errors("list apps"):
        rows = await db.fetch(
            "SELECT a.id, a.slug, a.name, a.created_at, a.updated_at, m.role"
            " FROM apps a LEFT JOIN memberships m"
            " ON m.app_id = a.id AND m.user_id = $1 ORDER BY a.slug",
            user_id,
        )
    return [
        (
            AppRecord(
                id=r["id"],
                slug=r["slug"],
                name=r["name"],
                created_at=r["created_at"],
                updated_at=r["updated_at"],
            ),
            None if r["role"] is None else Role(r["role"]),
        )
        for r in rows
    ]


async def login_user(db: Db, username: str) -> LoginUser | None:
    with translate_errors("read user"):
        row = await db.fetchrow(
            "SELECT id, username, password_hash FROM users WHERE username = $1",
            username.lower(),
        )
    return None if row is None else LoginUser(**dict(row))


async def get_user(db: Db, id_or_name: str) -> UserRecord | None:
    with translate_errors("read user"):
        row = await db.fetchrow(
            f"{_USER} WHERE id = $1 OR username = lower($1)"
            " ORDER BY id = $1 DESC LIMIT 1",
            id_or_name,
        )
    return None if row is None else UserRecord(**dict(row))


async def list_users(db: Db) -> list[UserRecord]:
    with translate_errors("list users"):
        rows = await db.fetch(f"{_USER} ORDER BY username")
    return [UserRecord(**dict(r)) for r in rows]


async def admin_exists(db: Db) -> bool:
    with translate_errors("read users"):
        return bool(
            await db.fetchval("SELECT EXISTS (SELECT 1 FROM users WHERE is_admin)")
        )


async def list_members(db: Db, app_id: str) -> list[MemberRecord]:
    with translate_errors("list members"):
        rows = await db.fetch(
            "SELECT m.app_id, m.user_id, u.username, m.role, m.created_at, m.updated_at"
            " FROM memberships m JOIN users u ON u.id = m.user_id"
            " WHERE m.app_id = $1 ORDER BY u.username",
            app_id,
        )
    return [MemberRecord(**dict(r)) for r in rows]


async def list_keys(db: Db, user_id: str) -> list[KeyRecord]:
    """The user's keys, newest first, revoked ones included (marked)."""
    with translate_errors("list keys"):
        rows = await db.fetch(
            f"{_KEY} WHERE k.user_id = $1 ORDER BY k.created_at DESC, k.id",
            user_id,
        )
    return [KeyRecord(**dict(r)) for r in rows]


async def list_app_keys(db: Db, app_id: str) -> list[KeyRecord]:
    """Every user's keys bound to the app, newest first, revoked ones included."""
    with translate_errors("list keys"):
        rows = await db.fetch(
            f"{_KEY} WHERE k.app_id = $1 ORDER BY k.created_at DESC, k.id", app_id
        )
    return [KeyRecord(**dict(r)) for r in rows]


async def get_key(db: Db, key_id: str) -> KeyRecord | None:
    with translate_errors("read key"):
        row = await db.fetchrow(f"{_KEY} WHERE k.id = $1", key_id)
    return None if row is None else KeyRecord(**dict(row))
