"""Event log throughput and commit-to-wake-up latency, against a real Postgres.

Starts an embedded Postgres in a temporary directory (or uses
PICLOUD_BENCH_DATABASE_URL), migrates a fresh database and prints:
- events appended per second by one appender, in batches of 1 and of 100;
- the time from an append's commit (the append returned) to a subscriber's
  wake-up, where the subscriber has its own pool and CommitSignals, so only
  LISTEN/NOTIFY reaches it (the cross-process path), idle and while another
  appender keeps writing; and, apart, the time of the append itself.
With ``--bounds``, what limits one appender's batches of 100, each variant in
the same rounds: EventLog as shipped; a raw COPY of the same pre-encoded rows
(no EventLog, no version check: the table's own cost); and EventLog with
``synchronous_commit = off`` (no wait for the WAL fsync: a bound, never a
setting PiCloud may use, since it loses acknowledged writes on a crash).

Usage: python bench/bench_eventlog.py [--seconds 3] [--rounds 3] [--bounds]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from harness import embedded_postgres, pct

from picloud import event_loop
from picloud.config import Settings
from picloud.events import AppCreated, EventMeta, encode, utcnow
from picloud.store import CommitSignals, EventLog, relay_commit_signals
from picloud.store._pool import create_pool
from picloud.store.eventlog import event_type
from picloud.store.migrations import apply_migrations


def event(n: int) -> AppCreated:
    return AppCreated(at=utcnow(), app_id=f"a{n}", slug=f"s{n}", name="bench")


async def append_rate(log: EventLog, batch: int, seconds: float) -> float:
    stream = f"bench-{uuid.uuid4().hex[:8]}"
    events = [event(n) for n in range(batch)]
    version, written = 0, 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        await log.append(stream, version, events)
        version += batch
        written += batch
    return written / (time.perf_counter() - started)


async def wake_latencies(
    dsn: str, settings: Settings, samples: int, *, load: bool
) -> tuple[list[float], list[float]]:
    """Per sample: the append's own time (to its commit) and the time from
    its commit (the append returned) to the subscriber's wake-up, in ms."""
    writer_pool = await create_pool(dsn, settings)
    reader_pool = await create_pool(dsn, settings)
    writer = EventLog(writer_pool, CommitSignals())
    reader = EventLog(reader_pool, CommitSignals())
    appends: list[float] = []
    latencies: list[float] = []
    stop = asyncio.Event()

    async def background() -> None:
        version = 0
        while not stop.is_set():
            await writer.append("background", version, [event(version)])
            version += 1

    async with (
        relay_commit_signals(writer.signals, dsn, settings),
        relay_commit_signals(reader.signals, dsn, settings),
    ):
        await asyncio.sleep(0.3)
        cursor = await reader.latest_cursor()
        loader = asyncio.create_task(background()) if load else None
        follower = reader.follow(
            cursor, poll_interval=10.0, types=["app.updated.v1", "app.created.v1"]
        )
        stream = f"probe-{uuid.uuid4().hex[:8]}"
        for n in range(samples):
            started = time.perf_counter()
            await writer.append(stream, n, [event(n)])
            committed = time.perf_counter()
            while True:
                batch, _ = await anext(follower)
                if any(r.stream == stream and r.version == n + 1 for r in batch):
                    break
            appends.append((committed - started) * 1000)
            latencies.append((time.perf_counter() - committed) * 1000)
            await asyncio.sleep(0.005)
        stop.set()
        if loader is not None:
            await loader
        await follower.aclose()
    await writer_pool.close()
    await reader_pool.close()
    return appends, latencies


async def copy_rate(pool: asyncpg.Pool, batch: int, seconds: float) -> float:
    """Events/s of a bare COPY of pre-encoded rows, each batch its own commit."""
    stream = f"copy-{uuid.uuid4().hex[:8]}"
    rows = [
        (event_type(e), encode(e), encode(EventMeta()))
        for e in map(event, range(batch))
    ]
    version, written = 0, 0
    started = time.perf_counter()
    async with pool.acquire() as conn:
        while time.perf_counter() - started < seconds:
            records = [(stream, version + n, *row) for n, row in enumerate(rows, 1)]
            await conn.copy_records_to_table(
                "events",
                records=records,
                columns=("stream", "stream_version", "type", "data", "meta"),
            )
            version += batch
            written += batch
    return written / (time.perf_counter() - started)


async def unsynced_pool(dsn: str) -> asyncpg.Pool:
    """A pool of two connections that do not wait for the WAL fsync at commit."""
    pool = await create_pool(dsn, Settings(db_pool_min=2, db_pool_max=2))
    held = [await pool.acquire() for _ in range(2)]
    for conn in held:  # session settings survive release: the pool resets nothing
        await conn.execute("SET synchronous_commit = off")
    for conn in held:
        await pool.release(conn)
    return pool


async def bounds(dsn: str, settings: Settings, seconds: float, rounds: int) -> None:
    """One appender, batches of 100: EventLog against what bounds it."""
    pool = await create_pool(dsn, settings)
    unsynced = await unsynced_pool(dsn)
    shipped, no_fsync = (
        EventLog(pool, CommitSignals()),
        EventLog(unsynced, CommitSignals()),
    )
    variants: dict[str, Callable[[], Awaitable[float]]] = {
        "EventLog.append as shipped": lambda: append_rate(shipped, 100, seconds),
        "raw COPY of the rows, no EventLog": lambda: copy_rate(pool, 100, seconds),
        "EventLog, synchronous_commit off (a bound)": lambda: append_rate(
            no_fsync, 100, seconds
        ),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, measure in variants.items():
            rates[name].append(await measure())
    await pool.close()
    await unsynced.close()
    print("what bounds one appender, batches of 100 (the variants alternate):")
    for name, values in rates.items():
        print(
            f"  {name:<44} median {statistics.median(values):>9,.0f} events/s"
            f"  (rounds: {', '.join(f'{r:,.0f}' for r in values)})"
        )


async def run(dsn: str, seconds: float, rounds: int, *, with_bounds: bool) -> None:
    settings = Settings(db_pool_min=1, db_pool_max=4)
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn)
    await conn.close()
    pool = await create_pool(dsn, settings)
    log = EventLog(pool, CommitSignals())
    for batch, appenders in ((1, 1), (100, 1), (100, 4)):
        rates = []
        for _ in range(rounds):
            parts = await asyncio.gather(
                *(append_rate(log, batch, seconds) for _ in range(appenders))
            )
            rates.append(sum(parts))
        print(
            f"append, batches of {batch:>3}, {appenders} appender(s):"
            f" median {statistics.median(rates):>9,.0f} events/s"
            f"  (rounds: {', '.join(f'{r:,.0f}' for r in rates)})"
        )
    await pool.close()
    for load in (False, True):
        appends, lat = await wake_latencies(dsn, settings, 300, load=load)
        label = "under load" if load else "idle      "
        print(
            f"commit -> wake-up {label}: p50 {pct(lat, 0.5):.2f} ms"
            f"  p99 {pct(lat, 0.99):.2f} ms  max {max(lat):.2f} ms  (n={len(lat)});"
            f" the append itself: p50 {pct(appends, 0.5):.2f} ms"
            f"  p99 {pct(appends, 0.99):.2f} ms  max {max(appends):.2f} ms"
        )
    if with_bounds:
        await bounds(dsn, settings, seconds, rounds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bounds", action="store_true")
    args = parser.parse_args()
    url = os.environ.get("PICLOUD_BENCH_DATABASE_URL")
    if url:
        event_loop.run(run(url, args.seconds, args.rounds, with_bounds=args.bounds))
        return
    with embedded_postgres() as (dsn, _, _):
        event_loop.run(run(dsn, args.seconds, args.rounds, with_bounds=args.bounds))


if __name__ == "__main__":
    main()
