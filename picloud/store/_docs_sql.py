"""The document query DSL as SQL on ``docs`` and its ``doc_values`` index.

:func:`find_sql` compiles a :class:`DocQuery` to one SELECT with the semantics
of ``docs_query.matches`` and ``docs_query.sort_key`` (the tests hold them
equal on random data). Every user value is a bound parameter; paths use the
``->`` chain with text keys, so an array inside a path is *missing*.

How each condition is served (see also migrations 0005 and 0006):
- equality and ``$in`` of non-null values: containment on
  ``picloud_doc_scope(app_id, collection, data)`` (the scoped GIN index), of
  the value and of ``[value]`` (an array holding it); object and array operands
  are rechecked exactly, since containment is not equality;
- ``$eq null``, ``$ne``: exact predicates (they match missing fields, which no
  index holds);
- a boolean range is the equality it amounts to (``$gt false`` is ``= true``);
- other ranges are grouped by field and type and always checked exactly on the
  document; ``doc_values`` gives their candidates. With ``$sort`` on the field
  of a range, that field's index is walked in the sort's order and stops at the
  limit (merged with the few documents it cannot order: arrays, long strings).
  Otherwise the candidates of each range are counted up to a bound and the
  query drives from the first range with few of them (fetched by id), or, when
  all have many, filters the documents it reaches (in id order, soon done).
  Statistics cannot make that choice: doc_values mixes every path of every app.

The text may start with ``WITH``; it always returns those four columns.
:func:`write_doc_values` maintains ``doc_values`` in the caller's transaction.
"""

# ruff: noqa: S608  # every user value is a bound parameter; only placeholders,
# fixed SQL and int limits are formatted into the text

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import asyncpg

from picloud.store._docs_predicates import (
    COLUMNS,
    Eq,
    Params,
    Range,
    bound_params,
    candidate_selects,
    eq_candidate_selects,
    eq_contains,
    eq_sql,
    indexed_values,
    lower,
    order_by,
    range_exact,
)
from picloud.store._errors import translate_errors
from picloud.store._keyed import delete_by_keys
from picloud.store.docs_query import DocQuery, Sort, doc_index_rows

__all__ = ["find_docs", "find_sql", "write_doc_values"]

# A range with fewer candidates than this (or 4 x the limit) drives the query
# from its doc_values; with more, the planner chooses (a walk in id order
# finds the first rows of a wide range soonest). Counting them is cheap.
_FEW = 1000
_FEW_PER_ROW = 4
_MAX_DRIVERS: Final = 3


def find_sql(
    query: DocQuery, app_id: str, collection: str, *, extra: int = 0
) -> tuple[str, list[Any]]:
    """One ``SELECT id, data, created_at, updated_at FROM docs …`` and its args.

    Rows come in the query's order (``sort_key``), at most ``query.limit +
    extra`` of them, all of ``app_id``'s ``collection`` and no other. Run it
    with custom plans (:func:`find_docs` does): see there why.
    """
    p = Params(app_id, collection)
    limit = query.limit + extra
    eqs, ranges, never = lower(query.conditions)
    sort = query.sort
    walked = [r for r in ranges if sort is not None and r.path == sort.path]
    if sort is not None and len(walked) == 1 and not never:
        others = [eq_sql(p, eq) for eq in eqs]
        others += [f"({range_exact(p, r)})" for r in ranges if r is not walked[0]]
        return _walk_sql(p, sort, walked[0], others, limit), p.args
    return _filter_sql(p, sort, (eqs, ranges, never), limit=limit), p.args


class _Driver(NamedTuple):
    """A condition the query may be driven from: its candidates in doc_values."""

    counted: list[str]  # SELECTs of candidate ids, each counted up to a bound
    fetched: str  # all candidate ids (those plus any the index cannot hold)
    exact: str  # the condition itself, on the document, without an index
    many: str  # the condition where every driver has many candidates


def _drivers(
    p: Params, eqs: list[Eq], ranges: list[Range], *, gin: bool
) -> tuple[list[_Driver], list[str]]:
    """The conditions to count (at most _MAX_DRIVERS) and the others' SQL.

    ``gin``: where every driver has many candidates, leave equalities their
    GIN form; else their exact form, hidden from the planner's estimates in a
    CASE: it guesses a rare value for any value it did not sample, and would
    rather read the whole collection than walk it in id order for ``limit``
    (measured 90 ms instead of 2-4 ms, for a value held by 2% of 100,000).
    """
    drivers: list[_Driver] = []
    others: list[str] = []
    for eq in eqs:
        if not indexed_values(eq) or len(drivers) == _MAX_DRIVERS:
            others.append(eq_sql(p, eq))
            continue
        selects = eq_candidate_selects(p, eq)
        union = " UNION ALL ".join([*selects.counted, *selects.unindexed])
        exact = eq_contains(p, eq)
        hidden = f"CASE WHEN {exact} THEN true ELSE false END"
        drivers.append(
            _Driver(selects.counted, union, exact, eq_sql(p, eq) if gin else hidden)
        )
    for rng in ranges:
        exact = f"({range_exact(p, rng)})"
        if len(drivers) == _MAX_DRIVERS:
            others.append(exact)
            continue
        selects = candidate_selects(p, rng, direct=True)
        union = " UNION ALL ".join([*selects.counted, *selects.unindexed])
        drivers.append(_Driver(selects.counted, union, exact, exact))
    return drivers, others


def _filter_sql(
    p: Params,
    sort: Sort | None,
    lowered: tuple[list[Eq], list[Range], bool],
    *,
    limit: int,
) -> str:
    """Filter, then order, driven by the condition that holds few documents.

    Which strategy is right depends on how many documents a condition holds,
    which the planner cannot know (doc_values' statistics mix every path of
    every app; the GIN index's estimate of a rare value is often 2%: it once
    walked 100,000 documents for 9, 1.1 s). So the candidates of equalities
    to numbers or strings and of ranges are counted in doc_values, at most
    ``few`` index entries each, and one branch runs, the others pruned before
    they start: the first condition with few candidates fetches them by id;
    when all have many, the planner's plan runs (in id order, a walk that soon
    finds ``limit`` matches, checking each condition on the document).
    """
    eqs, ranges, never = lowered
    order = order_by(p, sort)
    tail = f" ORDER BY {order} LIMIT {int(limit)}"
    # When every condition holds many documents, keep the GIN index in play only
    # where it may pay: intersecting equalities, or sorting all the matches. In
    # id order one equality walks: its bitmap would recheck each match with a
    # copy of the document (2,000 matches: 13-30 ms against 2-4 ms).
    gin = sort is not None or len(eqs) > 1
    if never:  # a range that no value meets (``$lt false``)
        nothing = "d.app_id = $1 AND d.collection = $2 AND false"
        return f"SELECT {COLUMNS} FROM docs d WHERE {nothing}{tail}"
    drivers, others = _drivers(p, eqs, ranges, gin=gin)
    where = ["d.app_id = $1", "d.collection = $2", *others]
    if not drivers:
        return f"SELECT {COLUMNS} FROM docs d WHERE {' AND '.join(where)}{tail}"
    few = max(_FEW, _FEW_PER_ROW * limit)
    exact = [d.exact for d in drivers]
    counts = ", ".join(f"{_count_sql(d, few)} AS c{n}" for n, d in enumerate(drivers))
    branches = []
    for n, driver in enumerate(drivers):
        guard = [*(f"c{m} >= {few}" for m in range(n)), f"c{n} < {few}"]
        fetch = f"d.id = ANY(ARRAY({driver.fetched}))"
        branches.append(_branch([*where, *exact, fetch], guard, tail))
    many = [f"c{m} >= {few}" for m in range(len(drivers))]
    branches.append(_branch([*where, *(d.many for d in drivers)], many, tail))
    return (
        f"WITH counts AS MATERIALIZED (SELECT {counts})"
        f" SELECT {COLUMNS} FROM ({' UNION ALL '.join(branches)}) d{tail}"
    )


def _branch(where: list[str], guard: list[str], tail: str) -> str:
    """A SELECT that runs only if ``guard`` holds on the counts."""
    return (
        f"(SELECT {COLUMNS} FROM docs d WHERE {' AND '.join(where)}"
        f" AND (SELECT {' AND '.join(guard)} FROM counts){tail})"
    )


def _count_sql(driver: _Driver, few: int) -> str:
    """A driver's candidates counted up to ``few`` per index scan: cheap."""
    counts = [f"(SELECT count(*) FROM ({s} LIMIT {few}) c)" for s in driver.counted]
    return f"({' + '.join(counts)})"


def _walk_sql(p: Params, sort: Sort, rng: Range, others: list[str], limit: int) -> str:
    """Range + sort on one field: walk its index in order, stop at the limit.

    The documents whose value at the field is in the index in that order (a
    number, a short string) come from the walk; the rest that match (an array
    with a matching element, a long string) are found and sorted apart; the
    union of each part's first ``limit`` holds the first ``limit`` of all.
    """
    col = "v.num" if rng.kind == "num" else "v.str"
    desc = " DESC" if sort.descending else ""
    bounds = " AND ".join(f"{col} {op} {v}" for op, v in bound_params(p, rng))
    path = p.add(".".join(rng.path), "text")
    selects = candidate_selects(p, rng, direct=False)
    rest_union = " UNION ALL ".join([*selects.counted, *selects.unindexed])
    # By id from the candidates, whatever the planner guesses of their number.
    rest = [f"d.id = ANY(ARRAY({rest_union}))", f"({range_exact(p, rng)})"]
    order = order_by(p, sort)
    walk_where = " AND ".join([f"v.path = {path}", bounds, *others])
    rest_where = " AND ".join(["d.app_id = $1", "d.collection = $2", *rest, *others])
    return (
        f"SELECT {COLUMNS} FROM ("
        f"(SELECT {COLUMNS} FROM doc_values v JOIN docs d ON d.app_id = v.app_id"
        " AND d.collection = v.collection AND d.id = v.doc_id"
        f" WHERE v.app_id = $1 AND v.collection = $2 AND {walk_where}"
        f" ORDER BY {col}{desc}, v.doc_id LIMIT {int(limit)})"
        f" UNION ALL (SELECT {COLUMNS} FROM docs d WHERE {rest_where}"
        f" ORDER BY {order} LIMIT {int(limit)})"
        f") d ORDER BY {order} LIMIT {int(limit)}"
    )


async def find_docs(
    db: asyncpg.Pool | asyncpg.Connection,
    query: DocQuery,
    app_id: str,
    collection: str,
    *,
    extra: int = 0,
) -> list[asyncpg.Record]:
    """Run :func:`find_sql` with a plan made for its actual values.

    A prepared statement run again with other values may switch to a generic
    plan, which cannot tell a unique email from a common tier: measured,
    ``find_one`` by email went from 0.7 ms to 300-600 ms from its sixth run on
    100,000 documents. This sets ``plan_cache_mode = force_custom_plan`` (and
    no parallel workers) for the current transaction, opening one if there is
    none, and then fetches.
    """
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            return await find_docs(conn, query, app_id, collection, extra=extra)
    sql, args = find_sql(query, app_id, collection, extra=extra)
    with translate_errors("find documents"):
        if db.is_in_transaction():
            await db.execute(_CUSTOM_PLANS)
            rows = await db.fetch(sql, *args)
        else:
            async with db.transaction():
                await db.execute(_CUSTOM_PLANS)
                rows = await db.fetch(sql, *args)
    return list(rows)


# Custom plans, see find_docs. No parallel workers: they start before a branch
# finds its guard false (measured 12 ms to run nothing), and an API call on a
# shared server should not take every core.
_CUSTOM_PLANS: Final = (
    "SET LOCAL plan_cache_mode = force_custom_plan;"
    " SET LOCAL max_parallel_workers_per_gather = 0"
)

# -- maintenance -----------------------------------------------------------------

_DELETE: Final = delete_by_keys("doc_values", "doc_id", one_row_per_key=False)
_INSERT: Final = """
INSERT INTO doc_values (app_id, collection, doc_id, path, num, str)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                     $5::numeric[], $6::text[])
"""


async def write_doc_values(
    conn: asyncpg.Connection,
    changes: Sequence[tuple[str, str, str, Any | None]],
) -> None:
    """Replace the doc_values rows of each (app_id, collection, doc_id, data).

    ``data`` is the document's new value (JSON-like, or JSON bytes), or None
    when it was deleted; for a document listed twice the last entry wins. Two
    statements per call whatever its size; run it in the transaction that
    writes ``docs`` so the index never disagrees with a committed document.
    """
    latest = {(app, coll, doc): data for app, coll, doc, data in changes}
    if not latest:
        return
    keys = list(latest)
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
    for key, data in latest.items():
        if data is None:
            continue
        for row in doc_index_rows(data):
            for column, value in zip(columns, (*key, *row), strict=True):
                column.append(value)
    with translate_errors("write doc values"):
        await conn.execute(
            _DELETE, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]
        )
        if columns[0]:
            await conn.execute(_INSERT, *columns)
