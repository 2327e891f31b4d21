"""Reads of the ``apps`` projection."""

from __future__ import annotations

import asyncpg
import msgspec

from picloud.domain.records import AppRecord
from picloud.events.app import CorsPolicy
from picloud.store._errors import translate_errors

__all__ = ["AppRecord", "app_settings", "get_app", "list_apps"]

_decode_cors = msgspec.json.Decoder(CorsPolicy).decode


async def get_app(
    db: asyncpg.Pool | asyncpg.Connection, id_or_slug: str
) -> AppRecord | None:
    """The app with this id, else the one with this slug."""
    with translate_errors("get app"):
        row = await db.fetchrow(
            "SELECT id, slug, name, created_at, updated_at FROM apps"
            " WHERE id = $1 OR slug = $1 ORDER BY id = $1 DESC LIMIT 1",
            id_or_slug,
        )
    return None if row is None else AppRecord(**dict(row))


async def list_apps(db: asyncpg.Pool | asyncpg.Connection) -> list[AppRecord]:
    with translate_errors("list apps"):
        rows = await db.fetch(
            "SELECT id, slug, name, created_at, updated_at FROM apps ORDER BY slug"
        )
    return [AppRecord(**dict(row)) for row in rows]


async def app_settings(
    db: asyncpg.Pool, app_id: str
) -> tuple[CorsPolicy | None, list[str] | None]:
    """The app's CORS policy and its own fetch hosts (None: not set)."""
    with translate_errors("app settings"):
        row = await db.fetchrow(
            "SELECT cors, fetch_hosts FROM app_settings WHERE app_id = $1", app_id
        )
    if row is None:
        return None, None
    cors = None if row["cors"] is None else _decode_cors(row["cors"])
    return cors, row["fetch_hosts"]
