"""A CPU hog and its neighbour on one host: does the neighbour still answer?

Two apps share the one AppHost: ``quiet`` answers ``GET /hello``; ``hog``
burns CPU, in pure Lua (``while true do end``) or in C (``s:find`` over a
10 MB string, 400 times). The neighbour's latency is sampled by one client,
first alone, then while two clients call the hog in a loop. Each phase is
run against PiCloud as it is and, in the same run, against a server whose
slice is so long that every script runs on the host's event loop (how the
hosts ran before fair CPU), for comparison.

    python bench/bench_neighbours.py [--seconds 10]

Prints, per phase, the neighbour's p50/p99/max latency and errors, and what
the hog's callers got (status counts).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
from bench_ingress import admin_key, hello_app
from harness import embedded_postgres, local_ray, pct

from picloud import event_loop
from picloud.config import Settings
from picloud.server import Server

HOGS = {
    "pure Lua": "while true do end",
    "C-level": 'local s = string.rep("a", 1e7) for i = 1, 400 do s:find("[^a]") end',
}


async def _post(session: aiohttp.ClientSession, url: str, body: Any) -> Any:
    async with session.post(url, json=body) as response:
        answer = await response.json()
        if response.status != 201:
            raise RuntimeError(f"POST {url}: {response.status} {answer}")
        return answer


async def hog_app(session: aiohttp.ClientSession, base: str) -> None:
    app = await _post(
        session, f"{base}/api/v1/admin/apps", {"slug": "hog", "name": "hog"}
    )
    for n, source in enumerate(HOGS.values()):
        script = await _post(
            session,
            f"{base}/api/v1/admin/apps/{app['id']}/scripts",
            {"name": f"hog{n}", "source": source},
        )
        await _post(
            session,
            f"{base}/api/v1/admin/scripts/{script['id']}/routes",
            {"method": "GET", "path": f"/hog{n}"},
        )


async def sample(url: str, seconds: float) -> tuple[list[float], int]:
    """The neighbour's latencies (ms) over ``seconds``, one request at a time."""
    latencies, errors = [], 0
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                async with session.get(url) as response:
                    await response.read()
                    ok = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            latencies.append((time.perf_counter() - started) * 1000)
            errors += not ok
            await asyncio.sleep(0.01)
    return latencies, errors


async def hammer(url: str, until: float, statuses: collections.Counter[int]) -> None:
    """Call the hog in a loop until ``until``; count what it answers."""
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while time.monotonic() < until:
            try:
                async with session.get(url) as response:
                    await response.read()
                    statuses[response.status] += 1
            except (aiohttp.ClientError, TimeoutError):
                statuses[0] += 1


async def phase(base: str, hog: str | None, seconds: float) -> str:
    quiet = f"{base}/apps/quiet/hello"
    statuses: collections.Counter[int] = collections.Counter()
    hogs = []
    if hog is not None:
        until = time.monotonic() + seconds
        hogs = [asyncio.ensure_future(hammer(f"{base}/apps/hog/{hog}", until, statuses))
                for _ in range(2)]  # fmt: skip
        await asyncio.sleep(0.5)  # the hogs are running
    latencies, errors = await sample(quiet, seconds)
    for task in hogs:
        task.cancel()
    await asyncio.gather(*hogs, return_exceptions=True)
    got = ", ".join(f"{s or 'failed'}: {n}" for s, n in sorted(statuses.items()))
    return (
        f"p50 {pct(latencies, 0.5):7.1f}  p99 {pct(latencies, 0.99):7.1f}"
        f"  max {max(latencies):7.1f} ms  ({len(latencies)} requests, {errors} errors)"
        + (f"; hog answered {got}" if got else "")
    )


async def one_server(dsn: str, tmp: Path, seconds: float, **overrides: Any) -> None:
    settings = Settings(
        http_port=0,
        apps_port=0,
        ray_namespace=f"bench-{uuid.uuid4().hex[:8]}",
        data_dir=str(tmp / f"data-{uuid.uuid4().hex[:8]}"),
        log_level="WARNING",
        app_hosts=1,  # both apps on one host
        sync_timeout_ms=60_000,
        **overrides,
    )
    server = Server(settings, dsn, owns_actors=True)
    await server.start()
    try:
        headers = {"Authorization": f"Bearer {await admin_key(server)}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            await hello_app(session, server.url, "quiet")
            await hog_app(session, server.url)
        await sample(f"{server.apps_url}/apps/quiet/hello", 1)  # warm-up
        print(f"  quiet:            {await phase(server.apps_url, None, seconds)}")
        for n, name in enumerate(HOGS):
            line = await phase(server.apps_url, f"hog{n}", seconds)
            print(f"  {name + ' hog:':17} {line}")
            await asyncio.sleep(2)  # the hog's last runs end
    finally:
        await server.stop()


async def fresh_database(dsn: str, name: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def run(dsn: str, tmp: Path, args: argparse.Namespace) -> None:
    seconds = args.seconds
    print("PiCloud (a script past a 10 ms slice moves to a worker thread):")
    await one_server(await fresh_database(dsn, "sliced"), tmp, seconds)
    print("every script on the host's event loop (a slice of 1000 s), same run:")
    db = await fresh_database(dsn, "inline")
    await one_server(db, tmp, seconds, script_inline_slice_ms=1_000_000)
    print("... and no CPU budget either (the hosts before fair CPU), same run:")
    db = await fresh_database(dsn, "before")
    await one_server(
        db, tmp, seconds, script_inline_slice_ms=1_000_000,
        app_cpu_budget_ms_per_s=1_000_000, app_cpu_burst_ms=1_000_000,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(
        f"machine: {os.cpu_count()} cores, load average"
        f" {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    with embedded_postgres() as (dsn, _embedded, home), local_ray():
        event_loop.run(run(dsn, home, args))


if __name__ == "__main__":
    main()
