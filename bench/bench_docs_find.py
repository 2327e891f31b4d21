"""Document find latency on 100,000 documents, against a real Postgres.

Starts an embedded Postgres in a temporary directory (or uses
PICLOUD_BENCH_DATABASE_URL), migrates a fresh database, writes the documents
the way the docs projection does (rows in ``docs`` plus ``write_doc_values``,
in batches), runs VACUUM ANALYZE, then prints p50/p99 of ``find_docs`` (custom
plans; each sample with other values, as real traffic) for equality filters
of every selectivity, range filters with ``$sort`` on the same field and
``$limit 20``, and other shapes for comparison. Each figure is the median over
rounds of the per-round percentile; ``--explain`` prints each plan.

Targets (issue 6): equality p50 < 5 ms; range + $sort + $limit 20 p50 < 20 ms.

Usage: python bench/bench_docs_find.py [--docs 100000] [--rounds 5]
       [--samples 200] [--explain] [--reuse]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from harness import embedded_postgres, pct

from picloud import event_loop
from picloud.config import Settings
from picloud.store._docs_sql import find_docs, find_sql, write_doc_values
from picloud.store._pool import create_pool
from picloud.store.docs_query import parse_query
from picloud.store.migrations import apply_migrations

APP, COLLECTION = "bench-app", "users"
CITIES = [f"city-{n:02d}" for n in range(50)]
TAGS = ["new", "vip", "beta", "churned", "trial", "staff", "partner", "eu", "us"]
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)

Raw = dict[str, Any]


def _city(n: int) -> str:
    return CITIES[n % len(CITIES)]


# Each query takes the sample number, so values vary as in real traffic.
QUERIES: list[tuple[str, Callable[[int], Raw]]] = [
    ("eq, 1 match", lambda n: {"email": f"user-{n * 7919 % 100_000}@example.com"}),
    (
        "eq, 1 match, $limit 1 (find_one)",
        lambda n: {"email": f"user-{n * 7919 % 100_000}@example.com", "$limit": 1},
    ),
    ("eq, 100 matches", lambda n: {"owner": f"org-{n % 1000}"}),
    (
        "eq, 100 matches, $limit 20",
        lambda n: {"owner": f"org-{n % 1000}", "$limit": 20},
    ),
    (
        "eq nested, 2,000 matches, $limit 20",
        lambda n: {"address.city": _city(n), "$limit": 20},
    ),
    (
        "eq, 33,000 matches, $limit 20",
        lambda n: {"tier": ["free", "silver", "gold"][n % 3], "$limit": 20},
    ),
    (
        "eq array element, 22,000 matches, $limit 20",
        lambda n: {"tags": TAGS[n % len(TAGS)], "$limit": 20},
    ),
    (
        "range+sort asc, $limit 20",
        lambda n: {
            "age": {"$gte": 20 + n % 50, "$lt": 40 + n % 50},
            "$sort": "age",
            "$limit": 20,
        },
    ),
    (
        "range+sort desc, $limit 20",
        lambda n: {"score": {"$gt": n % 900}, "$sort": "-score", "$limit": 20},
    ),
    (
        "range+sort desc, 70 values, $limit 20",
        lambda n: {"age": {"$lt": 30 + n % 60}, "$sort": "-age", "$limit": 20},
    ),
    (
        "range+sort string, $limit 20",
        lambda n: {"name": {"$gte": f"user-{n % 10}"}, "$sort": "name", "$limit": 20},
    ),
    (
        "eq + range+sort desc, $limit 20",
        lambda n: {
            "tier": "gold",
            "age": {"$gt": 20 + n % 60},
            "$sort": "-age",
            "$limit": 20,
        },
    ),
    (
        "range, id order, $limit 20",
        lambda n: {"age": {"$gt": 20 + n % 60}, "$limit": 20},
    ),
    (
        "narrow range, id order, $limit 20",
        lambda n: {"name": {"$gt": f"user-9999{n % 9}"}, "$limit": 20},
    ),
    (
        "narrow range, sort other, $limit 20",
        lambda n: {
            "score": {"$gte": n % 900, "$lt": n % 900 + 1},
            "$sort": "-age",
            "$limit": 20,
        },
    ),
    # Not a target; shows the cost of sorting many matches on an unindexed order.
    (
        "eq 33,000 + sort other, $limit 20",
        lambda n: {"tier": "gold", "$sort": "-score", "$limit": 20},
    ),
]


def document(n: int, rng: random.Random) -> dict[str, Any]:
    return {
        "name": f"user-{n}",
        "email": f"user-{n}@example.com",
        "owner": f"org-{n % 1000}",
        "tier": rng.choice(["free", "silver", "gold"]),
        "age": rng.randint(18, 90),
        "score": round(rng.random() * 1000, 3),
        "active": rng.random() < 0.8,
        "tags": rng.sample(TAGS, rng.randint(0, 3)),
        "address": {"city": rng.choice(CITIES), "zip": f"{rng.randint(0, 99999):05d}"},
        "signed_up": (EPOCH + timedelta(minutes=n)).isoformat(),
    }


async def populate(pool: asyncpg.Pool, count: int, batch: int = 1000) -> float:
    rng = random.Random(7)
    started = time.perf_counter()
    await pool.execute(
        "INSERT INTO apps (id, slug, name, created_at, updated_at)"
        " VALUES ($1, $1, $1, now(), now()) ON CONFLICT DO NOTHING",
        APP,
    )
    for first in range(0, count, batch):
        docs = [
            (f"{n:012d}", document(n, rng))
            for n in range(first, min(count, first + batch))
        ]
        async with pool.acquire() as conn, conn.transaction():
            now = datetime.now(UTC)
            await conn.executemany(
                "INSERT INTO docs (app_id, collection, id, data, created_at,"
                " updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
                [(APP, COLLECTION, doc_id, data, now) for doc_id, data in docs],
            )
            await write_doc_values(conn, [(APP, COLLECTION, i, d) for i, d in docs])
    return time.perf_counter() - started


async def measure(
    pool: asyncpg.Pool, make: Callable[[int], Raw], samples: int, offset: int
) -> tuple[list[float], int]:
    """Latencies of find_docs (custom plans), one query per sample."""
    times: list[float] = []
    rows = 0
    async with pool.acquire() as conn:
        for n in range(offset, offset + samples):
            query = parse_query(make(n), max_in=100, max_limit=1000)
            started = time.perf_counter()
            rows = len(await find_docs(conn, query, APP, COLLECTION))
            times.append((time.perf_counter() - started) * 1000)
    return times, rows


async def explain(pool: asyncpg.Pool, raw: Raw) -> str:
    sql, args = find_sql(parse_query(raw, max_in=100, max_limit=1000), APP, COLLECTION)
    plan = await pool.fetch(f"EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) {sql}", *args)
    return "\n".join(r[0] for r in plan)


async def prepare(pool: asyncpg.Pool, docs: int, *, reuse: bool) -> None:
    have = await pool.fetchval(
        "SELECT count(*) FROM docs WHERE app_id = $1 AND collection = $2",
        APP,
        COLLECTION,
    )
    if not (reuse and have == docs):
        await pool.execute("DELETE FROM docs WHERE app_id = $1", APP)
        await pool.execute("DELETE FROM doc_values WHERE app_id = $1", APP)
        took = await populate(pool, docs)
        print(f"wrote {docs:,} documents with their doc_values in {took:.1f} s")
        await pool.execute("VACUUM ANALYZE docs")
        await pool.execute("VACUUM ANALYZE doc_values")


async def run(dsn: str, args: argparse.Namespace) -> None:
    settings = Settings(db_pool_min=1, db_pool_max=2)
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn)
    await conn.close()
    pool = await create_pool(dsn, settings)
    await prepare(pool, args.docs, reuse=args.reuse)
    values = await pool.fetchval("SELECT count(*) FROM doc_values")
    print(
        f"{args.docs:,} documents, {values:,} doc_values rows;"
        f" median over {args.rounds} rounds of {args.samples} finds each"
    )
    for label, make in QUERIES:
        p50s, p99s = [], []
        for r in range(args.rounds):
            times, rows = await measure(pool, make, args.samples, r * args.samples)
            p50s.append(pct(times, 0.5))
            p99s.append(pct(times, 0.99))
        print(
            f"{label:<40} rows {rows:>4}  p50 {statistics.median(p50s):7.2f} ms"
            f"  p99 {statistics.median(p99s):7.2f} ms"
        )
        if args.explain:
            print(await explain(pool, make(0)))
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="keep existing documents")
    args = parser.parse_args()
    url = os.environ.get("PICLOUD_BENCH_DATABASE_URL")
    if url:
        event_loop.run(run(url, args))
        return
    with embedded_postgres() as (dsn, _, _):
        event_loop.run(run(dsn, args))


if __name__ == "__main__":
    main()
