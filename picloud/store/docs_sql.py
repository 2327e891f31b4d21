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
- ranges on one field and one type: a ``doc_values`` range scan yields
  candidates, an exact predicate on the document rechecks them (arrays need
  each bound met by some element, long strings are not in the index);
- a boolean range is the equality it amounts to (``$gt false`` is ``= true``);
- ``$sort`` on a field that has a range: the ``doc_values`` index of that field
  is walked in order and stops at the limit, merged with the few documents it
  cannot order (arrays, long strings); any other ``$sort`` sorts the matches.

:func:`write_doc_values` maintains ``doc_values`` in the caller's transaction.
"""

# ruff: noqa: S608  # every user value is a bound parameter; only placeholders,
# fixed SQL and int limits are formatted into the text

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import asyncpg

from picloud.store._docs_predicates import (
    COLUMNS,
    Eq,
    Params,
    Range,
    bound_params,
    candidate_selects,
    eq_sql,
    lower,
    order_by,
    range_exact,
)
from picloud.store._errors import translate_errors
from picloud.store.docs_query import DocQuery, Sort, doc_index_rows

__all__ = ["find_docs", "find_sql", "write_doc_values"]

# A range with fewer candidates than this (or 4 x the limit) drives the query
# from its doc_values; with more, the planner chooses (a walk in id order
# finds the first rows of a wide range soonest). Counting them is cheap.
_FEW: Final = 1000
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


def _filter_sql(
    p: Params,
    sort: Sort | None,
    lowered: tuple[list[Eq], list[Range], bool],
    *,
    limit: int,
) -> str:
    """Filter, then order: equalities by the GIN index, ranges by doc_values.

    How to serve a range depends on how many documents it holds, which the
    planner cannot know (the statistics of doc_values mix every path of every
    app; it once walked 100,000 documents for 9, 1.1 s). So the candidates of
    the first ranges are counted, at most ``few`` index entries each, and one
    branch runs, the others pruned before they start: the first range with
    few candidates fetches them by id; when all have many, ranges are only
    checked on the documents the planner reaches (in id order, a walk that
    finds ``limit`` matches soon).
    """
    eqs, ranges, never = lowered
    order = order_by(p, sort)
    tail = f" ORDER BY {order} LIMIT {int(limit)}"
    where = ["d.app_id = $1", "d.collection = $2"]
    where += [eq_sql(p, eq) for eq in eqs]
    where += [f"({range_exact(p, r)})" for r in ranges]
    if never:
        where.append("false")
    if not ranges or never:
        return f"SELECT {COLUMNS} FROM docs d WHERE {' AND '.join(where)}{tail}"
    drivers, few = ranges[:_MAX_DRIVERS], max(_FEW, 4 * limit)
    counts = ", ".join(
        f"{_count_sql(p, r, few)} AS c{n}" for n, r in enumerate(drivers)
    )
    branches = []
    for n, rng in enumerate(drivers):
        union = " UNION ALL ".join(candidate_selects(p, rng, direct=True))
        guard = " AND ".join([*(f"c{m} >= {few}" for m in range(n)), f"c{n} < {few}"])
        driven = [*where, f"d.id = ANY(ARRAY({union}))"]
        branches.append(_branch(driven, guard, tail))
    guard = " AND ".join(f"c{m} >= {few}" for m in range(len(drivers)))
    branches.append(_branch(where, guard, tail))
    return (
        f"WITH counts AS MATERIALIZED (SELECT {counts})"
        f" SELECT {COLUMNS} FROM ({' UNION ALL '.join(branches)}) d{tail}"
    )


def _branch(where: list[str], guard: str, tail: str) -> str:
    """A SELECT that runs only if ``guard`` holds on the counts."""
    return (
        f"(SELECT {COLUMNS} FROM docs d WHERE {' AND '.join(where)}"
        f" AND (SELECT {guard} FROM counts){tail})"
    )


def _count_sql(p: Params, rng: Range, few: int) -> str:
    """Candidates of a range's value and array elements, counted up to ``few``.

    One LIMITed index range scan each: never more than ``few`` entries read.
    """
    selects = candidate_selects(p, rng, direct=True)[:2]
    counts = [f"(SELECT count(*) FROM ({s} LIMIT {few}) c)" for s in selects]
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
    rest_union = " UNION ALL ".join(candidate_selects(p, rng, direct=False))
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
    100,000 documents. This sets ``plan_cache_mode = force_custom_plan`` for
    the current transaction (opening one if there is none) and then fetches.
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


_CUSTOM_PLANS: Final = "SET LOCAL plan_cache_mode = force_custom_plan"

# -- maintenance -----------------------------------------------------------------

_DELETE: Final = """
DELETE FROM doc_values v
USING unnest($1::text[], $2::text[], $3::text[]) AS c(app_id, collection, doc_id)
WHERE v.app_id = c.app_id AND v.collection = c.collection AND v.doc_id = c.doc_id
"""
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
