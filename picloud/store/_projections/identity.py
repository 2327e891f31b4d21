"""The ``users``, ``memberships`` and ``api_keys`` projections of the system stream."""

from __future__ import annotations

from typing import assert_never

import asyncpg

from picloud.events.system import (
    ApiKeyCreated,
    ApiKeyRevoked,
    IdentityEvent,
    MemberRemoved,
    MemberSet,
    UserAdminChanged,
    UserCreated,
    UserDeleted,
    UserPasswordChanged,
)

__all__ = ["project_identity"]


async def project_identity(conn: asyncpg.Connection, event: IdentityEvent) -> None:
    """Apply one identity event (in the transaction that appends it)."""
    match event:
        case UserCreated() | UserPasswordChanged() | UserAdminChanged() | UserDeleted():
            await _project_user(conn, event)
        case MemberSet():
            await conn.execute(
                "INSERT INTO memberships"
                " (app_id, user_id, role, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $4) ON CONFLICT (app_id, user_id)"
                " DO UPDATE SET role = EXCLUDED.role, updated_at = EXCLUDED.updated_at",
                event.app_id,
                event.user_id,
                event.role,
                event.at,
            )
        case MemberRemoved():
            await conn.execute(
                "DELETE FROM memberships WHERE app_id = $1 AND user_id = $2",
                event.app_id,
                event.user_id,
            )
        case ApiKeyCreated():
            await conn.execute(
                "INSERT INTO api_keys (id, user_id, name, prefix, secret_hash, scopes,"
                " app_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                event.key_id,
                event.user_id,
                event.name,
                event.prefix,
                event.secret_hash,
                list(event.scopes),
                event.app_id,
                event.at,
            )
        case ApiKeyRevoked():
            await conn.execute(
                "UPDATE api_keys SET revoked_at = $2 WHERE id = $1",
                event.key_id,
                event.at,
            )
        case _:
            assert_never(event)


async def _project_user(
    conn: asyncpg.Connection,
    event: UserCreated | UserPasswordChanged | UserAdminChanged | UserDeleted,
) -> None:
    match event:
        case UserCreated():
            await conn.execute(
                "INSERT INTO users (id, username, password_hash, is_admin,"
                " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
                event.user_id,
                event.username.lower(),
                event.password_hash,
                event.is_admin,
                event.at,
            )
        case UserPasswordChanged():
            await conn.execute(
                "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1",
                event.user_id,
                event.password_hash,
                event.at,
            )
            # A new password ends every session made with the old one.
            await conn.execute("DELETE FROM sessions WHERE user_id = $1", event.user_id)
        case UserAdminChanged():
            await conn.execute(
                "UPDATE users SET is_admin = $2, updated_at = $3 WHERE id = $1",
                event.user_id,
                event.is_admin,
                event.at,
            )
        case UserDeleted():
            # Memberships, keys and sessions go with the user (ON DELETE CASCADE).
            await conn.execute("DELETE FROM users WHERE id = $1", event.user_id)
        case _:
            assert_never(event)
