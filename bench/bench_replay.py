"""Replay, export and activation against a log of a million events.

Starts an embedded Postgres (or uses PICLOUD_BENCH_DATABASE_URL), writes one
app's stream of N events (default 1,000,000: route runs that each set a KV
entry among 10,000, so half the events are KvSet and half the runs'
InvocationRecorded), and measures in the same run:

- ``picloud replay``'s rebuild into a scratch schema (store.replay), in log
  events per second (the records it need not project are skipped in SQL;
  projected events per second shown too);
- the peer: the ``eventsourcing`` library's notification reader
  (PostgresApplicationRecorder.select_notifications, pages of 10,000) over
  the same number of events in its own table, on the same server;
- the export to Parquet through the events API's reader (redaction included);
- activation of the app (AppActor.activate) without a snapshot (the whole
  log folded) and with one at the log's end.

Usage: python bench/bench_replay.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
from harness import embedded_postgres

from picloud import event_loop
from picloud.actors.app_actor import AppActor, app_stream
from picloud.actors.control_plane import ControlPlane
from picloud.actors.invoker import Invoker
from picloud.cli._parquet import ParquetEvents
from picloud.config import Settings
from picloud.domain.event_query import After, EventQuery
from picloud.domain.system import CreateApp
from picloud.events import EventMeta, encode, utcnow
from picloud.events.app import InvocationRecorded, KvSet
from picloud.events.snapshot import encode_snapshot
from picloud.scripting import AppInfo
from picloud.store import AppStore, CommitSignals, EventLog
from picloud.store._pool import create_pool
from picloud.store.event_pages import EventReader
from picloud.store.migrations import apply_migrations
from picloud.store.replay import Replay

_KEYS = 10_000
_COPY_BATCH = 50_000


async def write_log(pool: asyncpg.Pool, app_id: str, count: int) -> None:
    """``count`` events of the app's stream, by COPY (no actor: only the log)."""
    stream, meta, now = app_stream(app_id), encode(EventMeta()), utcnow()
    batch: list[tuple[str, int, str, bytes, bytes]] = []
    for version in range(1, count + 1):
        n = version // 2
        if version % 2:
            event: KvSet | InvocationRecorded = KvSet(
                at=now,
                app_id=app_id,
                collection="hits",
                key=f"k{n % _KEYS}",
                value=b'{"n":%d}' % n,  # type: ignore[arg-type]  # msgspec.Raw-compatible JSON
            )
        else:
            event = InvocationRecorded(
                at=now,
                app_id=app_id,
                execution_id=f"x{n}",
                script_id="s",
                trigger="route:POST /hit",
                status="ok",
                started_at=now,
                duration_ms=0.2,
            )
        kind = "kv.set.v1" if version % 2 else "invocation.recorded.v1"
        batch.append((stream, version, kind, encode(event), meta))
        if len(batch) == _COPY_BATCH:
            await _copy(pool, batch)
    await _copy(pool, batch)


async def _copy(
    pool: asyncpg.Pool, batch: list[tuple[str, int, str, bytes, bytes]]
) -> None:
    if batch:
        await pool.copy_records_to_table(
            "events",
            records=batch,
            columns=("stream", "stream_version", "type", "data", "meta"),
        )
        batch.clear()


async def replay_rate(dsn: str, settings: Settings, count: int) -> tuple[float, float]:
    run = await Replay.open(dsn, settings, f"bench_{uuid.uuid4().hex[:8]}")
    try:
        started = time.perf_counter()
        await run.rebuild()
        seconds = time.perf_counter() - started
    finally:
        await run.close(keep=False)
    return count / seconds, run.events / seconds


def _peer_recorder(dsn: str) -> tuple[Any, Any]:
    """The eventsourcing library's Postgres recorder on the bench's server."""
    from eventsourcing.postgres import (  # noqa: PLC0415  # bench-only
        PostgresApplicationRecorder,
        PostgresDatastore,
    )

    parts = urlsplit(dsn)
    host = parse_qs(parts.query).get("host", [parts.hostname or "localhost"])[0]
    datastore = PostgresDatastore(
        parts.path.lstrip("/"),
        host,
        parts.port or 5432,
        parts.username or "postgres",
        parts.password or "",
    )
    recorder = PostgresApplicationRecorder(datastore, events_table_name="es_events")
    recorder.create_table()
    return datastore, recorder


async def fill_peer(pool: asyncpg.Pool, count: int) -> None:
    """The peer's table gets the same number of events, by COPY: only its
    reader is measured (its inserts lock the table and are slow to fill)."""
    state = b'{"collection":"hits","key":"k1","value":{"n":1}}'
    originator = uuid.uuid4()
    for start in range(0, count, _COPY_BATCH):
        await pool.copy_records_to_table(
            "es_events",
            records=[
                (originator, v, "bench.KvSet", state)
                for v in range(start + 1, min(start + _COPY_BATCH, count) + 1)
            ],
            columns=("originator_id", "originator_version", "topic", "state"),
        )


def peer_rate(recorder: Any, count: int) -> float:
    """The notification reader, pages of 10,000: events/s."""
    started, read, position = time.perf_counter(), 0, 1
    while True:
        page = recorder.select_notifications(position, 10_000)
        if not page:
            break
        read += len(page)
        position = page[-1].id + 1
    seconds = time.perf_counter() - started
    assert read == count, (read, count)
    return read / seconds


async def export_rate(pool: asyncpg.Pool, out: Path) -> tuple[float, int]:
    reader = EventReader(pool, CommitSignals())
    after, written = After(), 0
    started = time.perf_counter()
    with ParquetEvents(out) as parquet:
        while True:
            page = await reader.page(EventQuery(), after, 10_000)
            if page.events:
                parquet.write(page.events)
            written += len(page.events)
            after = page.after
            if page.caught_up:
                break
    size = out.stat().st_size  # noqa: ASYNC240  # one stat, after the timing
    return written / (time.perf_counter() - started), size


async def activation_ms(
    log: EventLog, app: AppInfo, settings: Settings, *, snapshot: bool
) -> float:
    store = AppStore(log, app.id)
    if snapshot:
        first = AppActor(
            app, store=store, settings=settings, invoker=Invoker(app, settings)
        )
        await first.activate()
        await store.save_snapshot(
            first.stream,
            first.version,
            encode_snapshot(first.state, first.deliveries, first.version),
        )
        await first.close()
    actor = AppActor(
        app, store=store, settings=settings, invoker=Invoker(app, settings)
    )
    started = time.perf_counter()
    await actor.activate()
    elapsed = (time.perf_counter() - started) * 1000
    await actor.close()
    return elapsed


async def run(dsn: str, count: int) -> None:
    settings = Settings(db_pool_min=1, db_pool_max=4, db_statement_timeout_ms=600_000)
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn)
    await conn.close()
    pool = await create_pool(dsn, settings)
    log = EventLog(pool, CommitSignals())
    plane = ControlPlane(log)
    [created] = await plane.execute(CreateApp(slug="bench", name="bench"), EventMeta())
    app = AppInfo(id=created.event.app_id, slug="bench", name="bench")  # type: ignore[attr-defined]
    started = time.perf_counter()
    await write_log(pool, app.id, count)
    await pool.execute("ANALYZE events")
    print(f"wrote {count:,} events in {time.perf_counter() - started:.1f}s")
    rows: list[tuple[str, str]] = []
    log_rate, projected = await replay_rate(dsn, settings, count + 1)
    rows.append(
        (
            "replay into a scratch schema",
            f"{log_rate:,.0f} log events/s ({projected:,.0f} projected/s)",
        )
    )
    datastore, recorder = await asyncio.to_thread(_peer_recorder, dsn)
    await fill_peer(pool, count)
    peer = await asyncio.to_thread(peer_rate, recorder, count)
    datastore.close()
    rows.append(("eventsourcing notification reader (peer)", f"{peer:,.0f} events/s"))
    with tempfile.TemporaryDirectory() as tmp:
        rate, size = await export_rate(pool, Path(tmp) / "events.parquet")
    rows.append(("export to Parquet", f"{rate:,.0f} events/s ({size / 1e6:.1f} MB)"))
    cold = await activation_ms(log, app, settings, snapshot=False)
    rows.append((f"activation, {count:,} events, no snapshot", f"{cold:,.0f} ms"))
    warm = await activation_ms(log, app, settings, snapshot=True)
    rows.append((f"activation, {count:,} events, snapshot", f"{warm:,.1f} ms"))
    await pool.close()
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  result")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    url = os.environ.get("PICLOUD_BENCH_DATABASE_URL")
    if url:
        event_loop.run(run(url, args.events))
        return
    with embedded_postgres() as (dsn, _, _):
        event_loop.run(run(dsn, args.events))


if __name__ == "__main__":
    main()
