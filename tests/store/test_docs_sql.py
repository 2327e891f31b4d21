"""find_sql and write_doc_values on a real Postgres: the indexes the plans use,
the walk that stops at the limit, isolation between apps and collections, and
the maintenance of doc_values (update, delete, batches, app deletion)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from picloud.config import Settings
from picloud.store._docs_sql import find_docs, find_sql, write_doc_values
from picloud.store._pool import create_pool
from picloud.store.docs_query import doc_index_rows, matches, parse_query, sort_key
from tests.helpers import create_database, drop_database

APPS = ["app-1", "app-2", "x", "x/y"]


@pytest.fixture
async def db(pool: asyncpg.Pool) -> asyncpg.Pool:
    await pool.executemany(
        "INSERT INTO apps (id, slug, name, created_at, updated_at)"
        " VALUES ($1, $2, $1, now(), now())",
        [(app, f"slug-{n}") for n, app in enumerate(APPS)],
    )
    return pool


async def put(
    db: asyncpg.Pool, app: str, collection: str, docs: dict[str, Any | None]
) -> None:
    """Write documents (None deletes) and their doc_values, as the projection does."""
    async with db.acquire() as conn, conn.transaction():
        for doc_id, data in docs.items():
            if data is None:
                await conn.execute(
                    "DELETE FROM docs"
                    " WHERE app_id = $1 AND collection = $2 AND id = $3",
                    app,
                    collection,
                    doc_id,
                )
            else:
                await conn.execute(
                    "INSERT INTO docs (app_id, collection, id, data, created_at,"
                    " updated_at) VALUES ($1, $2, $3, $4, now(), now())"
                    " ON CONFLICT (app_id, collection, id) DO UPDATE SET data = $4",
                    app,
                    collection,
                    doc_id,
                    data,
                )
        await write_doc_values(conn, [(app, collection, i, d) for i, d in docs.items()])


async def find(db: asyncpg.Pool, app: str, collection: str, raw: Any) -> list[str]:
    query = parse_query(raw, max_in=10, max_limit=100)
    return [r["id"] for r in await find_docs(db, query, app, collection)]


def reference(raw: Any, docs: dict[str, Any]) -> list[str]:
    query = parse_query(raw, max_in=10, max_limit=100)
    key = sort_key(query)
    found = [i for i, d in docs.items() if matches(query, d)]
    return sorted(found, key=lambda i: key(i, docs[i]))[: query.limit]


# -- plans -----------------------------------------------------------------------


def person(n: int) -> dict[str, Any]:
    return {
        "email": f"user-{n}@example.com",
        "tier": ["free", "silver", "gold"][n % 3],
        "age": 18 + n % 70,
        "score": (n * 7919 % 10007) / 10.0,
        "name": f"user-{n * 31 % 5000:04d}",
        "tags": ["a", "b"] if n % 5 == 0 else [],
        "vip": n == 77,
        "box": {"w": n % 1000},
    }


@pytest.fixture(scope="module")
async def people(pg_server: str, template_db: str) -> AsyncIterator[asyncpg.Pool]:
    """5,000 people in app-1/people, analyzed; one database for the module's
    plan tests, which only read it."""
    dsn = await create_database(pg_server, template_db)
    db = await create_pool(dsn, Settings(db_pool_min=1, db_pool_max=2))
    await db.execute(
        "INSERT INTO apps (id, slug, name, created_at, updated_at)"
        " VALUES ('app-1', 'app-1', 'one', now(), now())"
    )
    async with db.acquire() as conn, conn.transaction():
        docs = [(f"{n:06d}", person(n)) for n in range(5000)]
        await conn.executemany(
            "INSERT INTO docs (app_id, collection, id, data, created_at, updated_at)"
            " VALUES ('app-1', 'people', $1, $2, now(), now())",
            docs,
        )
        await write_doc_values(conn, [("app-1", "people", i, d) for i, d in docs])
    await db.execute("VACUUM ANALYZE docs")
    await db.execute("VACUUM ANALYZE doc_values")
    yield db
    await db.close()
    await drop_database(pg_server, dsn)


async def plan(db: asyncpg.Pool, raw: Any) -> dict[str, Any]:
    """The executed plan (EXPLAIN ANALYZE, JSON) of a find in app-1/people."""
    query = parse_query(raw, max_in=10, max_limit=1000)
    sql, args = find_sql(query, "app-1", "people")
    text = await db.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
    tree: dict[str, Any] = json.loads(text)[0]["Plan"]
    return tree


def nodes(tree: dict[str, Any]) -> list[dict[str, Any]]:
    found = [tree]
    for child in tree.get("Plans", []):
        found += nodes(child)
    return found


def index_scans(tree: dict[str, Any]) -> dict[str, int]:
    """Index name -> rows it returned, over the executed nodes of the plan."""
    scans: dict[str, int] = {}
    for n in nodes(tree):
        if "Index Name" in n and n["Actual Loops"]:
            scans[n["Index Name"]] = scans.get(n["Index Name"], 0) + n["Actual Rows"]
    return scans


def seq_scans(tree: dict[str, Any]) -> list[str]:
    """Tables read whole by executed nodes (a pruned branch may hold one)."""
    return [
        n["Relation Name"]
        for n in nodes(tree)
        if n["Node Type"] == "Seq Scan" and n["Actual Loops"]
    ]


async def test_equality_to_numbers_or_strings_fetches_its_few_candidates(
    people: asyncpg.Pool,
) -> None:
    for raw, count in [
        ({"email": "user-77@example.com"}, 1),
        ({"email": "user-77@example.com", "$limit": 1}, 1),
        ({"email": {"$in": ["user-1@example.com", "user-2@example.com"]}}, 2),
        ({"age": 30, "score": {"$lt": 100}}, 7),
        ({"email": "user-77@example.com", "age": {"$gt": 3}, "$sort": "-score"}, 1),
    ]:
        tree = await plan(people, raw)
        scans = index_scans(tree)
        assert tree["Actual Rows"] == count, raw
        assert {"doc_values_str_idx", "doc_values_str_desc_idx"} & set(scans) or {
            "doc_values_num_idx",
            "doc_values_num_desc_idx",
        } & set(scans), (raw, scans)
        assert scans["docs_pkey"] <= 80, (raw, scans)  # age 30: 72 candidates
        assert not seq_scans(tree), raw


async def test_equality_to_other_values_uses_the_scoped_gin_index(
    people: asyncpg.Pool,
) -> None:
    for raw in [
        {"vip": True},
        {"box": {"w": 5}},
        {"box": {"$in": [{"w": 5}, {"w": 6}]}},
    ]:
        tree = await plan(people, raw)
        assert "docs_scoped_data_idx" in index_scans(tree), raw
        assert not seq_scans(tree), raw


async def test_a_common_equality_in_id_order_walks_and_stops(
    people: asyncpg.Pool,
) -> None:
    for raw in [{"tier": "gold", "$limit": 20}, {"tags": "a", "$limit": 20}]:
        tree = await plan(people, raw)
        scans = index_scans(tree)
        assert tree["Actual Rows"] == 20
        assert scans["docs_pkey"] <= 100, (raw, scans)  # 1 in 3, 1 in 5 match
        assert "docs_scoped_data_idx" not in scans, (raw, scans)
        assert not seq_scans(tree), raw


async def test_range_sort_limit_walks_the_doc_values_index_and_stops(
    people: asyncpg.Pool,
) -> None:
    for raw, index in [
        ({"age": {"$gte": 30}, "$sort": "age", "$limit": 20}, "doc_values_num_idx"),
        (
            {"age": {"$lt": 60}, "$sort": "-age", "$limit": 20},
            "doc_values_num_desc_idx",
        ),
        (
            {"score": {"$gt": 10, "$lte": 900}, "$sort": "-score", "$limit": 20},
            "doc_values_num_desc_idx",
        ),
        (
            {"name": {"$gte": "user-1"}, "$sort": "name", "$limit": 20},
            "doc_values_str_idx",
        ),
        (
            {"name": {"$lt": "user-9"}, "$sort": "-name", "$limit": 20},
            "doc_values_str_desc_idx",
        ),
    ]:
        tree = await plan(people, raw)
        scans = index_scans(tree)
        # Ties are many (70 ages over 5,000 documents), yet the walk reads no
        # more entries than it returns rows: it stops at the limit and never
        # reads a group of equal values whole.
        assert scans.get(index, 99) <= 21, (raw, scans)
        assert not seq_scans(tree), raw
        assert tree["Actual Rows"] == 20


async def test_a_range_with_few_documents_fetches_them_by_id(
    people: asyncpg.Pool,
) -> None:
    for raw in [
        {"age": {"$gt": 86}},
        {"score": {"$gte": 5, "$lt": 6}},
        {"name": {"$gt": "user-4990"}, "$limit": 5},
        {"age": {"$gt": 20}, "name": {"$lt": "user-0003"}},
        {"tier": "gold", "name": {"$lt": "user-0100"}, "$sort": "score"},
    ]:
        tree = await plan(people, raw)
        scans = index_scans(tree)
        assert {"doc_values_num_idx", "doc_values_num_desc_idx"} & set(scans) or {
            "doc_values_str_idx",
            "doc_values_str_desc_idx",
        } & set(scans), (raw, scans)
        # Only the candidates are read from docs, by primary key.
        assert 0 < scans["docs_pkey"] <= 100, (raw, scans)
        assert not seq_scans(tree), raw


async def test_a_wide_range_in_id_order_stops_at_the_limit(
    people: asyncpg.Pool,
) -> None:
    for raw in [
        {"age": {"$gt": 20}, "$limit": 20},
        {"score": {"$lt": 900}, "$limit": 50},
    ]:
        tree = await plan(people, raw)
        scans = index_scans(tree)
        assert scans["docs_pkey"] <= 4 * tree["Actual Rows"], (raw, scans)
        assert not seq_scans(tree), raw


# -- isolation -------------------------------------------------------------------

ISOLATION_FILTERS: list[Any] = [
    {},
    {"n": 1},
    {"n": {"$gt": 0}},
    {"n": {"$gte": 0}, "$sort": "-n", "$limit": 3},
    {"s": {"$gte": ""}, "$sort": "s"},
    {"n": {"$ne": 1}},
    {"missing": None},
    {"n": {"$in": [1, 2, None]}},
    {"o": {"k": 1}},
    {"$sort": "n"},
]


async def test_queries_see_only_their_app_and_collection(db: asyncpg.Pool) -> None:
    # ("x", "y/z") and ("x/y", "z") share the scope key "x/y/z" of the GIN index.
    scopes = [
        ("app-1", "c"),
        ("app-2", "c"),
        ("app-1", "d"),
        ("x", "y/z"),
        ("x/y", "z"),
    ]
    data: dict[tuple[str, str], dict[str, Any]] = {}
    for n, (app, collection) in enumerate(scopes):
        docs: dict[str, Any] = {
            f"{app}|{collection}|{k}": {"n": k, "s": f"{n}-{k}", "o": {"k": k}}
            for k in range(3)
        }
        data[(app, collection)] = docs
        await put(db, app, collection, docs)
    for (app, collection), docs in data.items():
        for raw in ISOLATION_FILTERS:
            found = await find(db, app, collection, raw)
            assert found == reference(raw, docs), (app, collection, raw)
            assert all(i.startswith(f"{app}|{collection}|") for i in found)


# -- maintenance -----------------------------------------------------------------


async def values_of(db: asyncpg.Pool, app: str, doc_id: str) -> set[tuple[Any, ...]]:
    rows = await db.fetch(
        "SELECT path, num, str FROM doc_values WHERE app_id = $1 AND doc_id = $2",
        app,
        doc_id,
    )
    return {(r["path"], r["num"], r["str"]) for r in rows}


async def test_an_update_replaces_a_documents_rows_and_a_delete_drops_them(
    db: asyncpg.Pool,
) -> None:
    await put(db, "app-1", "c", {"d1": {"n": 5, "t": [1, "x"]}, "d2": {"n": 7}})
    assert await values_of(db, "app-1", "d1") == {
        ("n", Decimal(5), None),
        ("t.$", Decimal(1), None),
        ("t.$", None, "x"),
    }
    await put(db, "app-1", "c", {"d1": {"n": 50}})
    assert await values_of(db, "app-1", "d1") == {("n", Decimal(50), None)}
    assert await find(db, "app-1", "c", {"n": {"$lt": 10}}) == ["d2"]
    assert await find(db, "app-1", "c", {"n": {"$gt": 10}}) == ["d1"]
    await put(db, "app-1", "c", {"d1": None})
    assert await values_of(db, "app-1", "d1") == set()
    assert await values_of(db, "app-1", "d2") == {("n", Decimal(7), None)}


async def test_a_batch_writes_the_last_state_of_each_document(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn, conn.transaction():
        await write_doc_values(
            conn,
            [
                ("app-1", "c", "d1", {"n": 1}),
                ("app-2", "c", "d1", {"n": 2}),
                ("app-1", "c", "d1", {"n": 3, "s": "x" * 600}),
                ("app-1", "c", "d2", {"n": 4}),
                ("app-1", "c", "d2", None),
            ],
        )
        await write_doc_values(conn, [])
    assert await values_of(db, "app-1", "d1") == {
        ("n", Decimal(3), None),
        ("s", None, None),
    }
    assert await values_of(db, "app-2", "d1") == {("n", Decimal(2), None)}
    assert await values_of(db, "app-1", "d2") == set()


async def test_rows_accept_json_bytes_and_keep_numbers_exact(db: asyncpg.Pool) -> None:
    data = b'{"big": 100000000000000000000001, "f": 1e23, "g": 0.1, "deep": ' + (
        b'{"a": {"b": {"c": {"d": 1, "e": {"f": 2}}}}}}'
    )
    async with db.acquire() as conn, conn.transaction():
        await write_doc_values(conn, [("app-1", "c", "d1", data)])
    stored = await values_of(db, "app-1", "d1")
    assert stored == {(r.path, r.num, r.text) for r in doc_index_rows(data)}
    assert ("big", Decimal(10**23 + 1), None) in stored
    assert ("f", Decimal(10**23), None) in stored
    assert ("g", Decimal("0.1"), None) in stored
    assert ("deep.a.b.c.d", Decimal(1), None) in stored
    assert not any(path.startswith("deep.a.b.c.e") for path, _, _ in stored)


async def test_deleting_an_app_deletes_its_rows(db: asyncpg.Pool) -> None:
    await put(db, "app-1", "c", {"d1": {"n": 1}})
    await put(db, "app-2", "c", {"d1": {"n": 2}})
    await db.execute("DELETE FROM apps WHERE id = 'app-1'")
    assert (
        await db.fetchval("SELECT count(*) FROM doc_values WHERE app_id = 'app-1'") == 0
    )
    assert await values_of(db, "app-2", "d1") == {("n", Decimal(2), None)}


async def test_find_docs_inside_a_transaction_keeps_it(db: asyncpg.Pool) -> None:
    await put(db, "app-1", "c", {"d1": {"n": 1}})
    query = parse_query({"n": 1}, max_in=10, max_limit=10)
    async with db.acquire() as conn:
        async with conn.transaction():
            await conn.execute('UPDATE docs SET data = \'{"n": 1, "m": 2}\'')
            rows = await find_docs(conn, query, "app-1", "c")
            assert json.loads(rows[0]["data"]) == {"n": 1, "m": 2}
            assert conn.is_in_transaction()
        rows = await find_docs(conn, query, "app-1", "c")
        assert [r["id"] for r in rows] == ["d1"]
        assert not conn.is_in_transaction()
        mode = await conn.fetchval("SHOW plan_cache_mode")
        assert mode == "auto"  # SET LOCAL ended with its transaction
