"""Snapshots of actor state: a cache for fast activation, never the truth."""

from __future__ import annotations

import asyncpg

from picloud.store._errors import translate_errors

__all__ = ["load_snapshot", "save_snapshot"]


async def load_snapshot(db: asyncpg.Pool, stream: str) -> bytes | None:
    with translate_errors("load snapshot"):
        data: bytes | None = await db.fetchval(
            "SELECT state FROM snapshots WHERE stream = $1", stream
        )
    return data


async def save_snapshot(
    db: asyncpg.Pool, stream: str, version: int, state: bytes
) -> None:
    """Keep the newest snapshot of ``stream``; an older one never replaces it."""
    with translate_errors("save snapshot"):
        await db.execute(
            "INSERT INTO snapshots (stream, version, state) VALUES ($1, $2, $3)"
            " ON CONFLICT (stream) DO UPDATE"
            " SET version = $2, state = $3, taken_at = now()"
            " WHERE snapshots.version < $2",
            stream,
            version,
            state,
        )
