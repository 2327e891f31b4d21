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
    KvExpired,
    KvSet,
)
from picloud.store._docs_sql import write_doc_values
from picloud.store._keyed import delete_by_keys

__all__ = ["project_data"]

_UPSERT_KV = """
INSERT INTO kv_entries (app_id, collection, key, value, updated_at, expires_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[],
                     $5::timestamptz[], $6::timestamptz[])
ON CONFLICT (app_id, collection, key)
DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at,
              expires_at = EXCLUDED.expires_at
"""
_DELETE_KV = delete_by_keys("kv_entries", "key", one_row_per_key=True)
_UPSERT_DOCS = """
INSERT INTO docs (app_id, collection, id, data, created_at, updated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[],
                     $5::timestamptz[], $6::timestamptz[])
ON CONFLICT (app_id, collection, id)
DO UPDATE SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at
"""
_DELETE_DOCS = delete_by_keys("docs", "id", one_row_per_key=True)

Key = tuple[str, str, str]


async def project_data(conn: asyncpg.Connection, events: Sequence[DataEvent]) -> None:
    """Write the final state of every KV entry and document the events touch."""
    kv: dict[Key, tuple[bytes, datetime, datetime | None] | None] = {}
    docs: dict[Key, tuple[bytes, datetime, datetime] | None] = {}
    for event in events:
        match event:
            case KvSet():
                kv[event.app_id, event.collection, event.key] = (
                    bytes(event.value),
                    event.at,
                    event.expires_at,
                )
            case KvDeleted() | KvExpired():
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
    conn: asyncpg.Connection,
    kv: dict[Key, tuple[bytes, datetime, datetime | None] | None],
) -> None:
    upserts = [(*key, *v) for key, v in kv.items() if v is not None]
    deletes = [key for key, v in kv.items() if v is None]
    if upserts:
        await conn.execute(_UPSERT_KV, *_columns(upserts, 6))
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
