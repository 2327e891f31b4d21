"""find_sql on a real Postgres equals the reference (matches + sort_key).

Property-based: documents of mixed types (ints, floats, digit strings, unicode,
long strings, booleans, null, missing, arrays, nested objects) and filters
drawn from the whole DSL; results must be identical as ordered id lists.
"""

from __future__ import annotations

import itertools
import random
import re
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from picloud.store import _docs_sql as docs_sql
from picloud.store._docs_sql import find_docs, find_sql, write_doc_values
from picloud.store.docs_query import matches, parse_query, sort_key

MAX_IN, MAX_LIMIT = 8, 60
APP = "app-1"

# Small pools make filters hit and values tie; the edges are the point: 10 > 9,
# "10" < "9", 1 == 1.0, true != 1, 1e23 == 10**23, -0.0 == 0, codepoint order,
# strings just under and over the 512 bytes doc_values holds.
NUMBERS = [0, 1, 9, 10, 10.0, 9.5, -0.0, 2**53 + 1, 10**23, 1e23]
STRINGS = ["", "10", "9", "a", "B", "é", "e\u0301", "😀"]
LONG = ["L" * 600, "L" * 600 + "a", "x" * 512, "x" * 513]
CORE = [*NUMBERS, *STRINGS, *LONG, True, False, None]
KEYS = ["a", "b", "o", "t"]
COMMON = ["a", "b", "t", "o.a"]
PATHS = [*COMMON, *COMMON, "o", "o.b", "o.o.a", "a.b", "o.o.o.o.a"]
OPS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in"]
RANGES = ["$gt", "$gte", "$lt", "$lte"]

core = st.sampled_from(CORE)
numbers = st.one_of(
    st.sampled_from(NUMBERS),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False, allow_infinity=False),
)
strings = st.one_of(
    st.sampled_from(STRINGS + LONG),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
)
# one_of picks a branch uniformly: repeating the pool makes it most draws.
scalars = st.one_of(core, core, core, core, numbers, strings, st.booleans())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    ),
    max_leaves=8,
)
# Documents may hold keys no filter can address ("a.b", "$k").
documents = st.dictionaries(st.sampled_from([*KEYS, "a.b", "$k"]), values, max_size=4)
operands = st.one_of(core, core, core, core, values, st.none())
range_operands = st.one_of(numbers, strings, st.booleans())


@st.composite
def conditions(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        return draw(operands)  # implicit equality, literal objects and arrays
    ops = draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=2, unique=True))
    operand: dict[str, Any] = {}
    for op in ops:
        if op in ("$eq", "$ne"):
            operand[op] = draw(operands)
        elif op == "$in":
            operand[op] = draw(st.lists(operands, min_size=1, max_size=MAX_IN))
        else:
            operand[op] = draw(range_operands)
    return operand


@st.composite
def filters(draw: st.DrawFn) -> dict[str, Any]:
    """Any filter of the DSL, mostly of one or two fields."""
    count = draw(st.sampled_from([0, 1, 1, 1, 2]))
    paths = draw(st.lists(st.sampled_from(PATHS), min_size=count, max_size=count))
    raw: dict[str, Any] = {path: draw(conditions()) for path in paths}
    if draw(st.integers(0, 2)):
        field = draw(st.sampled_from([*raw, *raw, *PATHS]))
        raw["$sort"] = draw(st.sampled_from(["", "-"])) + field
    if draw(st.booleans()):
        raw["$limit"] = draw(st.integers(1, 12))
    return raw


@st.composite
def walk_filters(draw: st.DrawFn) -> dict[str, Any]:
    """A range, a sort on its field and a small limit: the index walk."""
    field = draw(st.sampled_from(COMMON))
    ops = draw(st.lists(st.sampled_from(RANGES), min_size=1, max_size=2, unique=True))
    kind = draw(st.sampled_from([numbers, strings, numbers, strings, range_operands]))
    raw: dict[str, Any] = {field: {op: draw(kind) for op in ops}}
    if draw(st.integers(0, 3)) == 0:
        raw[draw(st.sampled_from(PATHS))] = draw(conditions())
    raw["$sort"] = draw(st.sampled_from(["", "-"])) + field
    raw["$limit"] = draw(st.integers(1, 8))
    return raw


EXAMPLES = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def insert(pool: asyncpg.Pool, collection: str, docs: dict[str, Any]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            "INSERT INTO docs (app_id, collection, id, data, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, now(), now())",
            [(APP, collection, i, d) for i, d in docs.items()],
        )
        await write_doc_values(conn, [(APP, collection, i, d) for i, d in docs.items()])


def expected(raw: dict[str, Any], docs: dict[str, Any], extra: int) -> list[str]:
    query = parse_query(raw, max_in=MAX_IN, max_limit=MAX_LIMIT)
    key = sort_key(query)
    found = sorted(
        (i for i, d in docs.items() if matches(query, d)), key=lambda i: key(i, docs[i])
    )
    return found[: query.limit + extra]


async def check(
    pool: asyncpg.Pool,
    collection: str,
    docs: dict[str, Any],
    raw: dict[str, Any],
    extra: int = 0,
) -> None:
    query = parse_query(raw, max_in=MAX_IN, max_limit=MAX_LIMIT)
    rows = await find_docs(pool, query, APP, collection, extra=extra)
    assert [r["id"] for r in rows] == expected(raw, docs, extra), raw


@pytest.fixture(params=["planned", "all-many"])
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run as configured, or with every condition counted as holding many
    documents (the branch a small data set never reaches otherwise)."""
    if request.param == "all-many":
        monkeypatch.setattr(docs_sql, "_FEW", 2)
        monkeypatch.setattr(docs_sql, "_FEW_PER_ROW", 0)
    return str(request.param)


@pytest.fixture
async def app_pool(pool: asyncpg.Pool, strategy: str) -> asyncpg.Pool:
    await pool.execute(
        "INSERT INTO apps (id, slug, name, created_at, updated_at)"
        " VALUES ($1, $1, $1, now(), now()), ('app-2', 'app-2', 'two', now(), now())",
        APP,
    )
    return pool


_collections = itertools.count()


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(filters(), walk_filters()), extra=st.integers(0, 3))
def test_find_sql_binds_every_argument_once(raw: dict[str, Any], extra: int) -> None:
    query = parse_query(raw, max_in=MAX_IN, max_limit=MAX_LIMIT)
    sql, args = find_sql(query, APP, "c", extra=extra)
    used = {int(n) for n in re.findall(r"\$(\d+)", sql)}
    assert used == set(range(1, len(args) + 1))
    assert f"LIMIT {query.limit + extra}" in sql


@settings(EXAMPLES, max_examples=40)
@given(
    docs=st.lists(documents, max_size=25),
    ids=st.lists(
        st.text("aAbB09_~é", min_size=1, max_size=3),
        min_size=25,
        max_size=25,
        unique=True,
    ),
    raws=st.lists(st.one_of(filters(), walk_filters()), min_size=1, max_size=6),
    extra=st.integers(0, 3),
)
async def test_find_equals_the_reference_on_drawn_documents(
    app_pool: asyncpg.Pool,
    docs: list[Any],
    ids: list[str],
    raws: list[dict[str, Any]],
    extra: int,
) -> None:
    collection = f"drawn-{next(_collections)}"
    data = dict(zip(ids, docs, strict=False))
    await insert(app_pool, collection, data)
    for raw in raws:
        await check(app_pool, collection, data, raw, extra)


def mixed_documents(count: int, seed: int) -> dict[str, Any]:
    """A fixed data set over the same pools, with the nesting filters reach."""
    rng = random.Random(seed)  # noqa: S311  # a reproducible data set, no secret

    def value(key: str, depth: int) -> Any:
        roll = rng.random()
        nest = 0.6 if key == "o" else 0.1
        if roll < nest and depth < 5:
            keys = rng.sample(KEYS, rng.randint(0, 3))
            return {k: value(k, depth + 1) for k in keys}
        if roll < nest + 0.15:
            # Nested values, and often null: an array holding it matches f=null.
            return [
                value("", depth + 1)
                if rng.random() < 0.5
                else rng.choice([None, *CORE])
                for _ in range(rng.randint(0, 3))
            ]
        return rng.choice(CORE)

    return {
        f"{n:04d}{rng.choice('aAz_')}": {
            k: value(k, 1) for k in rng.sample([*KEYS, "a.b"], rng.randint(0, 5))
        }
        for n in range(count)
    }


@pytest.fixture
async def mixed(app_pool: asyncpg.Pool) -> dict[str, Any]:
    docs = mixed_documents(400, seed=6)
    await insert(app_pool, "mixed", docs)
    await app_pool.execute("ANALYZE docs; ANALYZE doc_values")
    return docs


@settings(EXAMPLES, max_examples=25)
@given(raws=st.lists(filters(), min_size=10, max_size=10))
async def test_find_equals_the_reference_on_a_mixed_data_set(
    mixed: dict[str, Any], app_pool: asyncpg.Pool, raws: list[dict[str, Any]]
) -> None:
    for raw in raws:
        await check(app_pool, "mixed", mixed, raw)


@settings(EXAMPLES, max_examples=25)
@given(raws=st.lists(walk_filters(), min_size=10, max_size=10))
async def test_range_sort_limit_equals_the_reference_on_a_mixed_data_set(
    mixed: dict[str, Any], app_pool: asyncpg.Pool, raws: list[dict[str, Any]]
) -> None:
    for raw in raws:
        await check(app_pool, "mixed", mixed, raw)


EDGES: list[dict[str, Any]] = [
    {"a": {"$gt": 9}},
    {"a": {"$gt": "9"}},
    {"a": {"$lt": "9"}, "$sort": "-a"},
    {"a": {"$gte": 9, "$lt": 10}, "$sort": "a"},
    {"a": {"$gte": 9, "$lt": 10}, "$sort": "-a", "$limit": 3},
    {"a": {"$gt": 9}, "b": {"$lt": "b"}, "$sort": "-b"},
    {"a": {"$gte": "L"}, "$sort": "a"},
    {"a": {"$lte": "L" * 700}, "$sort": "-a", "$limit": 5},
    {"a": {"$gt": False}},
    {"a": {"$lt": False}},
    {"a": {"$gte": False}, "$sort": "a"},
    {"a": {"$gt": 1, "$lt": "z"}},
    {"a": 10, "$sort": "-o.a"},
    {"a": None},
    {"o": {"a": 1}},
    {"o.o.a": {"$in": [None, 1, "a", [1], {"a": 1}]}},
    {"t": []},
    {"t": {"$ne": []}},
    {"a": {"$ne": 10}, "b": {"$in": [9, "9"]}, "$sort": "b"},
    {"$sort": "-t"},
    {"$sort": "o.a", "$limit": 60},
]


async def test_find_edge_filters_on_the_mixed_data_set(
    mixed: dict[str, Any], app_pool: asyncpg.Pool
) -> None:
    for raw in EDGES:
        await check(app_pool, "mixed", mixed, raw)
        await check(app_pool, "mixed", mixed, raw, extra=2)
    assert sum(bool(expected(raw, mixed, 0)) for raw in EDGES) >= len(EDGES) - 3
