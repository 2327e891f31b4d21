"""Reads of the ``app_secrets`` projection: names for the API, sealed values
for the app's own scripts (opened in its actor, never here)."""

from __future__ import annotations

import asyncpg

from picloud.domain.records import SecretRecord
from picloud.store._errors import translate_errors

__all__ = ["list_secrets", "sealed_secrets"]


async def list_secrets(db: asyncpg.Pool, app_id: str) -> list[SecretRecord]:
    with translate_errors("list secrets"):
        rows = await db.fetch(
            "SELECT app_id, name, created_at, updated_at FROM app_secrets"
            " WHERE app_id = $1 ORDER BY name",
            app_id,
        )
    return [SecretRecord(**dict(r)) for r in rows]


async def sealed_secrets(db: asyncpg.Pool, app_id: str) -> dict[str, tuple[str, str]]:
    """name → (ciphertext, key id)."""
    with translate_errors("read secrets"):
        rows = await db.fetch(
            "SELECT name, ciphertext, key_id FROM app_secrets WHERE app_id = $1",
            app_id,
        )
    return {r["name"]: (r["ciphertext"], r["key_id"]) for r in rows}
