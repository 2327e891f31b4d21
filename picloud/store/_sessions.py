"""Operational identity tables: sessions and the last use of API keys.

Neither is an identity change, so neither is an event: a session is a
credential issued by a login, and a key's last-used time is a statistic.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TypeAlias

import asyncpg

from picloud.store._errors import translate_errors

__all__ = ["KeyUsage", "create_session", "delete_session"]

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection


async def create_session(
    db: Db, *, token_hash: str, user_id: str, ttl_s: int
) -> datetime:
    """Store a session for ``ttl_s`` seconds; return when it expires.

    Expired sessions of every user are swept here: logins are rare enough,
    and the expiry index makes it cheap.
    """
    with translate_errors("create session"):
        await db.execute("DELETE FROM sessions WHERE expires_at <= now()")
        expires_at: datetime = await db.fetchval(
            "INSERT INTO sessions (token_hash, user_id, expires_at)"
            " VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING expires_at",
            token_hash,
            user_id,
            float(ttl_s),
        )
    return expires_at


async def delete_session(db: Db, token_hash: str) -> None:
    with translate_errors("delete session"):
        await db.execute("DELETE FROM sessions WHERE token_hash = $1", token_hash)


class KeyUsage:
    """Records the last use of API keys, at most once per ``interval_s`` per key.

    The in-process memo skips the write for a key used again within the
    interval; the conditional UPSERT keeps several processes from writing
    more often than that either.
    """

    def __init__(self, interval_s: float = 60.0, max_remembered: int = 10_000) -> None:
        self._interval = interval_s
        self._max = max_remembered
        self._written: dict[str, float] = {}

    async def used(self, db: Db, key_id: str) -> None:
        now = time.monotonic()
        last = self._written.get(key_id)
        if last is not None and now - last < self._interval:
            return
        if len(self._written) >= self._max:
            self._written.clear()
        self._written[key_id] = now
        with translate_errors("record key use"):
            await db.execute(
                "INSERT INTO api_key_usage AS u (key_id, last_used_at)"
                " VALUES ($1, now()) ON CONFLICT (key_id) DO UPDATE"
                " SET last_used_at = EXCLUDED.last_used_at"
                " WHERE u.last_used_at < EXCLUDED.last_used_at"
                " - make_interval(secs => $2)",
                key_id,
                self._interval,
            )
