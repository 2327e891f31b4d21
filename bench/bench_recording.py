"""What keeping each run's request and response costs the hot path.

In one process, against a real (embedded) Postgres: the AppActor of an app
with a hello-world sync route (``return "hello"``) is sent invocations with
a browser's request headers, ``--in-flight`` at a time (group commit, as a
busy front door sends them), with ``record_requests`` on and off in
alternate rounds; each point is the median of ``--rounds``. It prints the
wall and CPU time per invocation (the actor's process: the script run, the
record's encoding and the append) and the size of the stored record.

Usage: python bench/bench_recording.py [--invocations 4000] [--rounds 5]
           [--in-flight 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

import asyncpg
from harness import ask, embedded_postgres

from picloud import event_loop
from picloud.actors.app_actor import AppActor
from picloud.actors.control_plane import ControlPlane
from picloud.actors.invoker import Invoker
from picloud.actors.protocol import HttpReply
from picloud.config import Settings
from picloud.domain.commands import AddRoute, Invoke, SaveScript
from picloud.domain.system import CreateApp
from picloud.events import EventMeta
from picloud.events.app import RequestRecord
from picloud.scripting import AppInfo
from picloud.store import AppStore, CommitSignals, EventLog
from picloud.store._pool import create_pool
from picloud.store.migrations import apply_migrations

HELLO = 'return "hello"'
HEADERS = {
    "host": "shop.example.com",
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0",
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-language": "en-GB,en;q=0.5",
    "accept-encoding": "gzip, deflate, br",
    "authorization": "Bearer not-a-picloud-key-but-a-secret",
    "x-request-id": "0f8fad5b-d9cb-469f-a165-70867728950e",
}


async def new_actor(log: EventLog, settings: Settings, slug: str) -> AppActor:
    plane = ControlPlane(log)
    await plane.catch_up()
    [made] = await plane.execute(CreateApp(slug=slug, name=slug), EventMeta())
    app = AppInfo(id=made.event.app_id, slug=slug, name=slug)  # type: ignore[attr-defined]  # AppCreated
    actor = AppActor(
        app,
        store=AppStore(log, app.id),
        settings=settings,
        invoker=Invoker(app, settings),
    )
    await actor.activate()
    return actor


async def hello_route(actor: AppActor) -> str:
    script = await ask(actor, SaveScript(name="hello", source=HELLO))
    route = await ask(
        actor, AddRoute(script_id=script.id, method="GET", path="/hello/{name}")
    )
    return str(route.id)


async def one_round(actor: AppActor, route_id: str, count: int, flight: int) -> Any:
    request = RequestRecord(
        method="GET",
        path="/hello/world",
        params={"name": "world"},
        query={"q": "1"},
        headers=HEADERS,
    )
    sem = asyncio.Semaphore(flight)
    seq = iter(range(count))

    async def one() -> None:
        async with sem:
            command = Invoke(
                execution_id=f"x{next(seq)}-{time.monotonic_ns()}",
                route_id=route_id,
                request=request,
            )
            reply = await actor.submit(command, 30)
            assert isinstance(reply, HttpReply), reply
            assert reply.status == 200, reply

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one() for _ in range(count)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall / count * 1e6, cpu / count * 1e6


async def record_size(pool: asyncpg.Pool, stream: str) -> int:
    size: int = await pool.fetchval(
        "SELECT octet_length(data::text) FROM events WHERE stream = $1"
        " AND type = 'invocation.recorded.v1' ORDER BY stream_version DESC LIMIT 1",
        stream,
    )
    return size


async def run(dsn: str, count: int, rounds: int, flight: int) -> None:
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn)
    await conn.close()
    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    sizes: dict[bool, int] = {}
    for n in range(rounds * 2 + 2):
        recording = n % 2 == 0
        settings = Settings(db_pool_min=2, db_pool_max=4, record_requests=recording)
        pool = await create_pool(dsn, settings)
        log = EventLog(pool, CommitSignals())
        actor = await new_actor(log, settings, f"bench{n}")
        route_id = await hello_route(actor)
        await one_round(actor, route_id, count // 4, flight)  # warm-up
        point = await one_round(actor, route_id, count, flight)
        if n >= 2:  # the first pair warms the process and the server
            results[recording].append(point)
        sizes[recording] = await record_size(pool, actor.stream)
        await actor.close()
        await pool.close()
    print(f"{count:,} hello invocations, {flight} in flight, medians of {rounds}")
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'record_requests':<16} {'wall us':>9} {'cpu us':>7} {'record B':>9}")
    for recording in (False, True):
        wall = statistics.median(p[0] for p in results[recording])
        cpu = statistics.median(p[1] for p in results[recording])
        name = "on" if recording else "off"
        print(f"{name:<16} {wall:>9.1f} {cpu:>7.1f} {sizes[recording]:>9}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invocations", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=64)
    args = parser.parse_args()
    url = os.environ.get("PICLOUD_BENCH_DATABASE_URL")
    if url:
        event_loop.run(run(url, args.invocations, args.rounds, args.in_flight))
        return
    with embedded_postgres() as (dsn, _, _):
        event_loop.run(run(dsn, args.invocations, args.rounds, args.in_flight))


if __name__ == "__main__":
    main()
