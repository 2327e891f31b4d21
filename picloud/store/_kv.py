"""Reads of the KV projection (writes are events; see projections/data.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from picloud.store._errors import translate_errors

__all__ = [
    "expired",
    "kv_collections",
    "kv_get_expiring",
    "kv_get_many",
    "kv_list",
    "kv_list_expiring",
    "next_expiry",
    "prefix_upper_bound",
]

# An entry past its TTL reads as absent at once, before its actor's sweep.
_LIST = """
SELECT key, value, expires_at FROM kv_entries
WHERE app_id = $1 AND collection = $2
  AND key > $3 AND key >= $4 AND ($5::text IS NULL OR key < $5)
  AND (expires_at IS NULL OR expires_at > now())
ORDER BY key LIMIT $6
"""
# One index probe per key, whatever the plan. A plain join of unnest() with
# kv_entries is right for the first executions of the prepared statement, but
# its cached generic plan reads every entry of the app and hashes them (it
# cannot see how few keys the arrays hold): measured 2 ms at 5,000 entries and
# 10 ms at 30,000, on every write's lookup. LIMIT keeps the planner from
# flattening the lateral subquery back into that join.
_GET_MANY = """
SELECT k.c AS collection, k.k AS key, v.value, v.expires_at
FROM unnest($2::text[], $3::text[]) AS k(c, k)
CROSS JOIN LATERAL (
    SELECT e.value, e.expires_at FROM kv_entries e
    WHERE e.app_id = $1 AND e.collection = k.c AND e.key = k.k
      AND (e.expires_at IS NULL OR e.expires_at > now()) LIMIT 1
) AS v
"""


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix``."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            return prefix[:-1] + chr(last + 1)
        prefix = prefix[:-1]
    return None


async def kv_get_many(
    db: asyncpg.Pool | asyncpg.Connection, app_id: str, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], bytes]:
    """The stored values of ``(collection, key)`` pairs that exist (and live)."""
    found = await kv_get_expiring(db, app_id, keys)
    return {k: value for k, (value, _) in found.items()}


async def kv_get_expiring(
    db: asyncpg.Pool | asyncpg.Connection, app_id: str, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[bytes, datetime | None]]:
    """:func:`kv_get_many` with each value's expiry (None: no TTL)."""
    if not keys:
        return {}
    with translate_errors("read kv"):
        rows = await db.fetch(
            _GET_MANY,
            app_id,
            [c for c, _ in keys],
            [k for _, k in keys],
        )
    return {(r["collection"], r["key"]): (r["value"], r["expires_at"]) for r in rows}


async def next_expiry(
    db: asyncpg.Pool, app_id: str, after: datetime | None = None
) -> datetime | None:
    """When the app's first KV entry with a TTL (after ``after``) runs out
    (None: none)."""
    with translate_errors("next kv expiry"):
        found: datetime | None = await db.fetchval(
            "SELECT min(expires_at) FROM kv_entries"
            " WHERE app_id = $1 AND expires_at IS NOT NULL"
            " AND ($2::timestamptz IS NULL OR expires_at > $2)",
            app_id,
            after,
        )
    return found


async def expired(
    db: asyncpg.Pool, app_id: str, now: datetime, limit: int
) -> list[tuple[str, str, bytes, datetime]]:
    """Entries past their TTL at ``now``: (collection, key, value, expires_at)."""
    with translate_errors("expired kv"):
        rows = await db.fetch(
            "SELECT collection, key, value, expires_at FROM kv_entries"
            " WHERE app_id = $1 AND expires_at IS NOT NULL AND expires_at <= $2"
            " ORDER BY expires_at LIMIT $3",
            app_id,
            now,
            limit,
        )
    return [(r["collection"], r["key"], r["value"], r["expires_at"]) for r in rows]


async def kv_list(  # noqa: PLR0913  # a query with its paging arguments
    db: asyncpg.Pool | asyncpg.Connection,
    app_id: str,
    collection: str,
    *,
    prefix: str,
    after: str,
    limit: int,
) -> list[tuple[str, bytes]]:
    """Entries in key order (codepoints), after ``after``, starting with ``prefix``."""
    return [(k, v) for k, v, _ in await kv_list_expiring(
        db, app_id, collection, prefix=prefix, after=after, limit=limit
    )]  # fmt: skip


async def kv_list_expiring(  # noqa: PLR0913  # a query with its paging arguments
    db: asyncpg.Pool | asyncpg.Connection,
    app_id: str,
    collection: str,
    *,
    prefix: str,
    after: str,
    limit: int,
) -> list[tuple[str, bytes, datetime | None]]:
    """:func:`kv_list` with each entry's expiry."""
    with translate_errors("list kv"):
        rows = await db.fetch(
            _LIST, app_id, collection, after, prefix, prefix_upper_bound(prefix), limit
        )
    return [(r["key"], r["value"], r["expires_at"]) for r in rows]


async def kv_collections(db: asyncpg.Pool, app_id: str) -> list[tuple[str, int]]:
    with translate_errors("kv collections"):
        rows = await db.fetch(
            "SELECT collection, count(*) AS n FROM kv_entries WHERE app_id = $1"
            " AND (expires_at IS NULL OR expires_at > now())"
            " GROUP BY collection ORDER BY collection",
            app_id,
        )
    return [(r["collection"], r["n"]) for r in rows]
