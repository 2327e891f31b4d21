"""Projections of the KV and document stores, batched per append.

Within one batch only the final state of each key and document matters to the
tables, so each batch costs a few statements whatever its size.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from picloud.events.app import (
    DataEvent,
    DocCreated,
    DocDeleted,
    DocUpdated,
    KvDeleted,
    KvSet,
)
from picloud.store.docs_sql import write_doc_values

__all__ = ["project_data"]

_UPSERT_KV = """
INSERT INTO kv_entries (app_id, collection, key, value, updated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::timestamptz[])
ON CONFLICT (app_id, collection, key)
DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at
"""
# Deletes find their rows by one index probe per key and delete them by ctid:
# a DELETE ... USING unnest() gets, once its generic plan is cached, a hash join
# over every row of the app (see kv_get_many). The ctids cannot go stale: the
# rows of an app change only in its actor's append transaction, and appends to
# one stream are serialised by the events' unique (stream, stream_version).
_DELETE_KV = """
DELETE FROM kv_entries WHERE ctid = ANY(ARRAY(
    SELECT x.ctid FROM unnest($1::text[], $2::text[], $3::text[]) AS d(a, c, k)
    CROSS JOIN LATERAL (
        SELECT e.ctid FROM kv_entries e
        WHERE e.app_id = d.a AND e.collection = d.c AND e.key = d.k LIMIT 1
    ) AS x
))
"""
_UPSERT_DOCS = """
INSERT INTO docs (app_id, collection, id, data, created_at, updated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[],
                     $5::timestamptz[], $6::timestamptz[])
ON CONFLICT (app_id, collection, id)
DO UPDATE SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at
"""
_DELETE_DOCS = """
DELETE FROM docs WHERE ctid = ANY(ARRAY(
    SELECT x.ctid FROM unnest($1::text[], $2::text[], $3::text[]) AS d(a, c, i)
    CROSS JOIN LATERAL (
        SELECT o.ctid FROM docs o
        WHERE o.app_id = d.a AND o.collection = d.c AND o.id = d.i LIMIT 1
    ) AS x
))
"""

Key = tuple[str, str, str]


async def project_data(conn: asyncpg.Connection, events: Sequence[DataEvent]) -> None:
    """Write the final state of every KV entry and document the events touch."""
    kv: dict[Key, tuple[bytes, datetime] | None] = {}
    docs: dict[Key, tuple[bytes, datetime, datetime] | None] = {}
    for event in events:
        match event:
            case KvSet():
                kv[event.app_id, event.collection, event.key] = (
                    bytes(event.value),
                    event.at,
                )
            case KvDeleted():
                kv[event.app_id, event.collection, event.key] = None
            case DocCreated() | DocUpdated():
                key = (event.app_id, event.collection, event.doc_id)
                old = docs.get(key)
                created = old[1] if old is not None else event.at
                docs[key] = (bytes(event.data), created, event.at)
            case DocDeleted():
                docs[event.app_id, event.collection, event.doc_id] = None
    await _write_kv(conn, kv)
    await _write_docs(conn, docs)


async def _write_kv(
    conn: asyncpg.Connection, kv: dict[Key, tuple[bytes, datetime] | None]
) -> None:
    upserts = [(*key, v[0], v[1]) for key, v in kv.items() if v is not None]
    deletes = [key for key, v in kv.items() if v is None]
    if upserts:
        await conn.execute(_UPSERT_KV, *_columns(upserts, 5))
    if deletes:
        await conn.execute(_DELETE_KV, *_columns(deletes, 3))


async def _write_docs(
    conn: asyncpg.Connection, docs: dict[Key, tuple[bytes, datetime, datetime] | None]
) -> None:
    upserts = [(*key, *v) for key, v in docs.items() if v is not None]
    deletes = [key for key, v in docs.items() if v is None]
    if upserts:
        await conn.execute(_UPSERT_DOCS, *_columns(upserts, 6))
    if deletes:
        await conn.execute(_DELETE_DOCS, *_columns(deletes, 3))
    if docs:
        decode = msgspec.json.decode
        changes = [
            (*key, None if v is None else decode(v[0])) for key, v in docs.items()
        ]
        await write_doc_values(conn, changes)


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(width)]
