"""The projections of the system stream: apps here, identity in :mod:`.identity`."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from picloud.events import (
    AppCreated,
    AppDeleted,
    AppUpdated,
    RecordedEvent,
    SecretDeleted,
    SecretSet,
    SystemEvent,
)
from picloud.store._projections.identity import project_identity

__all__ = ["project_system"]


async def project_system(
    conn: asyncpg.Connection, records: Sequence[RecordedEvent]
) -> None:
    """Apply system-stream events to the projections, in order."""
    for recorded in records:
        event = recorded.event
        if isinstance(event, SystemEvent):
            await _apply(conn, event)


async def _apply(conn: asyncpg.Connection, event: SystemEvent) -> None:
    match event:
        case AppCreated():
            await conn.execute(
                "INSERT INTO apps (id, slug, name, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $4)",
                event.app_id,
                event.slug,
                event.name,
                event.at,
            )
        case AppUpdated():
            await conn.execute(
                "UPDATE apps SET slug = $2, name = $3, updated_at = $4 WHERE id = $1",
                event.app_id,
                event.slug,
                event.name,
                event.at,
            )
        case AppDeleted():
            # Memberships go with the app (ON DELETE CASCADE).
            await conn.execute("DELETE FROM apps WHERE id = $1", event.app_id)
        case SecretSet():
            await conn.execute(
                "INSERT INTO app_secrets (app_id, name, ciphertext, key_id,"
                " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)"
                " ON CONFLICT (app_id, name) DO UPDATE"
                " SET ciphertext = $3, key_id = $4, updated_at = $5",
                event.app_id,
                event.name,
                event.ciphertext,
                event.key_id,
                event.at,
            )
        case SecretDeleted():
            await conn.execute(
                "DELETE FROM app_secrets WHERE app_id = $1 AND name = $2",
                event.app_id,
                event.name,
            )
        case _:
            await project_identity(conn, event)
