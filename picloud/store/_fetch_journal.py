"""The fetch journal: what ``http.fetch`` answered in an attempt of a delivery
(see :mod:`picloud.actors._outbound`)."""

from __future__ import annotations

import asyncpg

from picloud.store._errors import translate_errors

__all__ = ["forget_fetches", "read_journal", "record_fetch"]


async def read_journal(
    db: asyncpg.Pool, app_id: str, run_key: str
) -> dict[int, tuple[str, bytes]]:
    """seq → (digest of the request, the recorded entry)."""
    with translate_errors("read fetch journal"):
        rows = await db.fetch(
            "SELECT seq, digest, entry FROM fetch_journal"
            " WHERE app_id = $1 AND run_key = $2",
            app_id,
            run_key,
        )
    return {r["seq"]: (r["digest"], r["entry"]) for r in rows}


async def record_fetch(  # noqa: PLR0913  # one row, named
    db: asyncpg.Pool,
    app_id: str,
    run_key: str,
    *,
    seq: int,
    digest: str,
    entry: bytes,
) -> None:
    with translate_errors("record fetch"):
        await db.execute(
            "INSERT INTO fetch_journal (app_id, run_key, seq, digest, entry)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (app_id, run_key, seq)"
            " DO UPDATE SET digest = $4, entry = $5, recorded_at = now()",
            app_id,
            run_key,
            seq,
            digest,
            entry,
        )


async def forget_fetches(conn: asyncpg.Connection, app_id: str, run_key: str) -> None:
    await conn.execute(
        "DELETE FROM fetch_journal WHERE app_id = $1 AND run_key = $2",
        app_id,
        run_key,
    )
