"""Reads of the document projection (writes are events; see projections/data.py)."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

from picloud.store._docs_sql import find_docs
from picloud.store._errors import translate_errors
from picloud.store.docs_query import DocQuery

__all__ = ["DocRow", "doc_collections", "docs_find", "docs_get", "docs_list"]


class DocRow(msgspec.Struct, frozen=True):
    id: str
    data: bytes
    """The document's data as JSON text."""
    created_at: datetime
    updated_at: datetime


def _row(row: asyncpg.Record) -> DocRow:
    return DocRow(row["id"], row["data"], row["created_at"], row["updated_at"])


async def docs_get(
    db: asyncpg.Pool | asyncpg.Connection, app_id: str, collection: str, doc_id: str
) -> DocRow | None:
    with translate_errors("get doc"):
        row = await db.fetchrow(
            "SELECT id, data, created_at, updated_at FROM docs"
            " WHERE app_id = $1 AND collection = $2 AND id = $3",
            app_id,
            collection,
            doc_id,
        )
    return None if row is None else _row(row)


async def docs_find(  # a query with its scope
    db: asyncpg.Pool | asyncpg.Connection,
    app_id: str,
    collection: str,
    query: DocQuery,
    *,
    extra: int = 0,
) -> list[DocRow]:
    """Documents matching ``query`` in its order, at most ``limit + extra``
    (planned for its actual values: see :func:`find_docs`)."""
    rows = await find_docs(db, query, app_id, collection, extra=extra)
    return [_row(row) for row in rows]


async def docs_list(
    db: asyncpg.Pool | asyncpg.Connection,
    app_id: str,
    collection: str,
    *,
    after: str,
    limit: int,
) -> list[DocRow]:
    """Documents in id (creation) order after ``after``."""
    with translate_errors("list docs"):
        rows = await db.fetch(
            "SELECT id, data, created_at, updated_at FROM docs"
            " WHERE app_id = $1 AND collection = $2 AND id > $3 ORDER BY id LIMIT $4",
            app_id,
            collection,
            after,
            limit,
        )
    return [_row(row) for row in rows]


async def doc_collections(db: asyncpg.Pool, app_id: str) -> list[tuple[str, int]]:
    with translate_errors("doc collections"):
        rows = await db.fetch(
            "SELECT collection, count(*) AS n FROM docs WHERE app_id = $1"
            " GROUP BY collection ORDER BY collection",
            app_id,
        )
    return [(r["collection"], r["n"]) for r in rows]
