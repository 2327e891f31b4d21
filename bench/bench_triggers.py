"""Trigger delivery: commit → handler start latency, and deliveries per second.

Runs a real AppActor (the same object an AppHost runs) on an embedded Postgres
with real Lua; no HTTP, since the trigger path never crosses it. The event
log is instrumented to note when each append transaction has committed; the
handler's start is its execution record's ``started_at``.

- latency: one KV write per invocation, one at a time with a pause, each
  matched by a kv trigger; figures are the time from the write's commit to
  the start of its handler;
- throughput: one invocation writes N keys; the trivial handler runs once per
  key; deliveries/s = N / (last handler end - first handler start).

Usage: python bench/bench_triggers.py [--writes 300] [--burst 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from harness import ask, bench_actor, embedded_postgres, pct

from picloud import event_loop
from picloud.actors.app_actor import AppActor, app_stream
from picloud.config import Settings
from picloud.domain.commands import AddRoute, AddTrigger, Invoke, SaveScript
from picloud.events.app import InvocationRecorded, KvSet, RequestRecord
from picloud.store import CommitSignals, EventLog, Transaction
from picloud.store._pool import create_pool
from picloud.store.migrations import apply_migrations


class TimedLog(EventLog):
    """An EventLog that notes the wall-clock time each append transaction committed."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool, CommitSignals())
        self.commits: dict[
            int, float
        ] = {}  # last stream version of a batch → commit time

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        appended: list[Any] = []
        async with super().transaction() as tx:
            original = tx.append

            async def append(*args: Any, **kwargs: Any) -> Any:
                recorded = await original(*args, **kwargs)
                appended.extend(recorded)
                return recorded

            tx.append = append  # type: ignore[method-assign]
            yield tx
        now = time.time()
        for r in appended:
            self.commits[r.version] = now


async def build(log: TimedLog, settings: Settings) -> tuple[AppActor, str, str]:
    actor = await bench_actor(log, settings)
    handler = await ask(actor, SaveScript(name="handler", source="return nil"))
    await ask(actor, AddTrigger(kind="kv", script_id=handler.id, collection="in"))
    one = await ask(
        actor,
        SaveScript(name="one", source='kv.collection("in"):set(ctx.request.path, 1)'),
    )
    burst = await ask(
        actor,
        SaveScript(
            name="burst",
            source="local n = tonumber(ctx.request.path:sub(2)) "
            'for i = 1, n do kv.collection("in"):set("b" .. i, i) end',
        ),
    )
    one_route = await ask(actor, AddRoute(script_id=one.id, method="POST", path="/one"))
    burst_route = await ask(
        actor, AddRoute(script_id=burst.id, method="POST", path="/burst")
    )
    return actor, one_route.id, burst_route.id


def invoke(route_id: str, path: str, n: int) -> Invoke:
    return Invoke(
        execution_id=f"x{n}-{time.time_ns()}",
        route_id=route_id,
        request=RequestRecord(method="POST", path=path),
    )


async def handler_runs(
    log: EventLog, actor: AppActor, after: int
) -> list[InvocationRecorded]:
    rows = await log.read_stream(app_stream(actor.app.id), after, 1_000_000)
    return [
        r.event
        for r in rows
        if isinstance(r.event, InvocationRecorded) and r.event.delivery_id
    ]


async def latency(
    log: TimedLog, actor: AppActor, route: str, writes: int
) -> list[float]:
    start = actor.version
    for n in range(writes):
        await actor.submit(invoke(route, f"/k{n}", n), 60)
        await asyncio.sleep(0.01)
    while len(await handler_runs(log, actor, start)) < writes:  # noqa: ASYNC110  # polls the log
        await asyncio.sleep(0.05)
    rows = await log.read_stream(app_stream(actor.app.id), start, 1_000_000)
    source_version = {
        r.event.key: r.version for r in rows if isinstance(r.event, KvSet)
    }
    runs = {r.delivery_id: r for r in await handler_runs(log, actor, start)}
    out = []
    for version in source_version.values():
        run = next(r for d, r in runs.items() if d and d.startswith(f"{version}:"))
        out.append((run.started_at.timestamp() - log.commits[version]) * 1000)
    return out


async def throughput(log: TimedLog, actor: AppActor, route: str, burst: int) -> float:
    start = actor.version
    await actor.submit(invoke(route, f"/{burst}", 0), 60)
    while len(runs := await handler_runs(log, actor, start)) < burst:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    first = min(r.started_at for r in runs)
    last = max(r.started_at.timestamp() + r.duration_ms / 1000 for r in runs)
    return burst / (last - first.timestamp())


async def run(dsn: str, args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn)
    await conn.close()
    settings = Settings(db_pool_max=4)
    pool = await create_pool(dsn, settings)
    log = TimedLog(pool)
    actor, one, burst = await build(log, settings)
    for r in range(args.rounds):
        lat = await latency(log, actor, one, args.writes)
        rate = await throughput(log, actor, burst, args.burst)
        print(
            f"round {r + 1}: commit -> handler start p50 {pct(lat, 0.5):.2f} ms"
            f"  p99 {pct(lat, 0.99):.2f} ms  max {max(lat):.2f} ms (n={len(lat)});"
            f"  deliveries {rate:,.0f}/s (burst of {args.burst})"
        )
    await actor.close()
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--burst", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with embedded_postgres() as (dsn, _, _):
        event_loop.run(run(dsn, args))


if __name__ == "__main__":
    main()
