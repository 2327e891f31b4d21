"""Event log throughput and commit-to-wake-up latency, against a real Postgres.

Starts an embedded Postgres in a temporary directory (or uses
PICLOUD_BENCH_DATABASE_URL), migrates a fresh database and prints:
- events appended per second by one appender, in batches of 1 and of 100;
- the time from an append's commit to a subscriber's wake-up, where the
  subscriber has its own pool and Wakeups, so only LISTEN/NOTIFY reaches it
  (the cross-process path), idle and while another appender keeps writing.

Usage: python bench/bench_eventlog.py [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid

import asyncpg
from harness import embedded_postgres, pct

from picloud import event_loop
from picloud.config import Settings
from picloud.events import AppCreated, utcnow
from picloud.store import (
    EventLog,
    Wakeups,
    apply_migrations,
    bridge_to_postgres,
    create_pool,
)


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
) -> list[float]:
    writer_pool = await create_pool(dsn, settings)
    reader_pool = await create_pool(dsn, settings)
    writer = EventLog(writer_pool, Wakeups())
    reader = EventLog(reader_pool, Wakeups())
    latencies: list[float] = []
    stop = asyncio.Event()

    async def background() -> None:
        version = 0
        while not stop.is_set():
            await writer.append("background", version, [event(version)])
            version += 1

    async with (
        bridge_to_postgres(writer.wakeups, dsn),
        bridge_to_postgres(reader.wakeups, dsn),
    ):
        await asyncio.sleep(0.3)
        cursor = await reader.latest_cursor()
        loader = asyncio.create_task(background()) if load else None
        follower = reader.follow(
            cursor, poll_interval=10.0, types=["app.updated.v1", "app.created.v1"]
        )
        stream = f"probe-{uuid.uuid4().hex[:8]}"
        for n in range(samples):
            committed = time.perf_counter()
            await writer.append(stream, n, [event(n)])
            while True:
                batch, _ = await anext(follower)
                if any(r.stream == stream and r.version == n + 1 for r in batch):
                    break
            latencies.append((time.perf_counter() - committed) * 1000)
            await asyncio.sleep(0.005)
        stop.set()
        if loader is not None:
            await loader
        await follower.aclose()
    await writer_pool.close()
    await reader_pool.close()
    return latencies


async def run(dsn: str, seconds: float, rounds: int) -> None:
    settings = Settings(db_pool_min=1, db_pool_max=4)
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn)
    await conn.close()
    pool = await create_pool(dsn, settings)
    log = EventLog(pool, Wakeups())
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
        lat = await wake_latencies(dsn, settings, 300, load=load)
        label = "under load" if load else "idle      "
        print(
            f"commit -> wake-up {label}: p50 {pct(lat, 0.5):.2f} ms"
            f"  p99 {pct(lat, 0.99):.2f} ms  max {max(lat):.2f} ms  (n={len(lat)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = os.environ.get("PICLOUD_BENCH_DATABASE_URL")
    if url:
        event_loop.run(run(url, args.seconds, args.rounds))
        return
    with embedded_postgres() as (dsn, _, _):
        event_loop.run(run(dsn, args.seconds, args.rounds))


if __name__ == "__main__":
    main()
