"""Per-key lookups and deletes stay index probes under a cached generic plan.

asyncpg prepares every statement, and Postgres may cache a generic plan for
it, made for the table as it was then. A join of unnest() with the table,
planned while an app was small, kept hashing every row of the app as it grew:
a write's cost grew with the size of the app (10 ms at 30,000 entries). These
tests cache the plan while the app is small, grow the app, and count the rows
the cached plan then reads: a handful, where a scan reads thousands.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import asyncpg
import pytest

from picloud.store._docs_sql import _DELETE as DELETE_DOC_VALUES
from picloud.store._kv import _GET_MANY as KV_GET_MANY
from picloud.store._projections.data import _DELETE_DOCS, _DELETE_KV

APP = "app-1"
GROWN = 5_000
# Rows read per statement, at most: EXPLAIN reports rows per loop rounded to a
# whole number, so the count over a few probes is not exact.
HANDFUL = 10


@pytest.fixture
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database)
    await conn.execute(
        "INSERT INTO apps (id, slug, name, created_at, updated_at)"
        " VALUES ($1, 'app-1', 'one', now(), now())",
        APP,
    )
    await grow(conn, 1, 3)
    await conn.execute("ANALYZE")
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    yield conn
    await conn.close()


async def grow(conn: asyncpg.Connection, first: int, last: int) -> None:
    """Entries k<n> and documents d<n> (each with two doc_values) for n in range."""
    await conn.execute(
        "INSERT INTO kv_entries (app_id, collection, key, value, updated_at)"
        " SELECT $1, 'c', 'k' || g, '1'::jsonb, now()"
        " FROM generate_series($2::int, $3::int) g",
        APP,
        first,
        last,
    )
    await conn.execute(
        "INSERT INTO docs (app_id, collection, id, data, created_at, updated_at)"
        " SELECT $1, 'c', 'd' || g, '{}'::jsonb, now(), now()"
        " FROM generate_series($2::int, $3::int) g",
        APP,
        first,
        last,
    )
    await conn.execute(
        "INSERT INTO doc_values (app_id, collection, doc_id, path, num, str)"
        " SELECT $1, 'c', 'd' || g, p, g, NULL"
        " FROM generate_series($2::int, $3::int) g, unnest(ARRAY['a', 'b']) p",
        APP,
        first,
        last,
    )


async def rows_read_after_growth(
    conn: asyncpg.Connection, table: str, sql: str, *args: Any
) -> int:
    """Rows of ``table`` read by the plan of ``sql`` cached before the app grew
    (the statement's effects rolled back)."""
    await conn.execute(f"PREPARE lookup AS {sql}")
    await rolled_back(conn, "EXECUTE lookup", *args)  # caches the generic plan
    await grow(conn, 4, GROWN)
    plan = await rolled_back(
        conn, "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE lookup", *args
    )
    return _scanned(json.loads(plan)[0]["Plan"], table)


async def rolled_back(conn: asyncpg.Connection, statement: str, *args: Any) -> Any:
    transaction = conn.transaction()
    await transaction.start()
    try:
        return await conn.fetchval(f"{statement}({', '.join(map(_literal, args))})")
    finally:
        await transaction.rollback()


def _literal(value: Any) -> str:
    """``value`` as an SQL literal for EXECUTE (which takes no bound parameters)."""
    if isinstance(value, list):
        value = "{" + ",".join(map(json.dumps, value)) + "}"
    return "'" + str(value).replace("'", "''") + "'"


def _scanned(node: dict[str, Any], table: str) -> int:
    own = 0
    if node.get("Relation Name") == table and "Scan" in node["Node Type"]:
        own = node["Actual Rows"] * node["Actual Loops"]
    return own + sum(_scanned(child, table) for child in node.get("Plans", []))


async def test_kv_lookup_reads_only_the_keys_asked_for(
    conn: asyncpg.Connection,
) -> None:
    keys = ["k1", "k2500", "absent"]
    read = await rows_read_after_growth(
        conn, "kv_entries", KV_GET_MANY, APP, ["c"] * 3, keys
    )
    assert read <= HANDFUL
    found = await conn.fetch(KV_GET_MANY, APP, ["c"] * 3, keys)
    assert sorted(r["key"] for r in found) == ["k1", "k2500"]


class Delete(NamedTuple):
    table: str
    sql: str
    key_column: str
    keys: list[str]
    deleted: int


@pytest.mark.parametrize(
    "case",
    [
        Delete("kv_entries", _DELETE_KV, "key", ["k1", "k2500", "absent"], 2),
        Delete("docs", _DELETE_DOCS, "id", ["d1", "d2500", "absent"], 2),
        Delete("doc_values", DELETE_DOC_VALUES, "doc_id", ["d1", "d2500", "x"], 4),
    ],
    ids=lambda case: case.table,
)
async def test_deletes_read_only_the_rows_they_delete(
    conn: asyncpg.Connection, case: Delete
) -> None:
    args = ([APP] * len(case.keys), ["c"] * len(case.keys), case.keys)
    assert await rows_read_after_growth(conn, case.table, case.sql, *args) <= HANDFUL
    async with conn.transaction():
        assert await conn.execute(case.sql, *args) == f"DELETE {case.deleted}"
        left = f"SELECT count(*) FROM {case.table} WHERE {case.key_column} = ANY($1)"  # noqa: S608  # names from the cases above
        assert await conn.fetchval(left, case.keys) == 0
