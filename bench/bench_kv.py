"""Durable kv.set invocations per second through HTTP, against a hand-written handler.

One run: an embedded Postgres, a local Ray and a PiCloud server on loopback
with a route whose script does one ``kv.collection("bench"):set(key, value)``
per request; and, in a separate process on the same Postgres, an aiohttp
handler doing what a user would write by hand: one
``INSERT … ON CONFLICT DO UPDATE`` per request through an asyncpg pool (a
commit, and its WAL fsync, per request). wrk drives both with a unique key per
request at ``--connections`` (64), alternating, ``--rounds`` times; the medians
and the ratio PiCloud/hand-written are printed (target ≥ 1.0: group commit
should beat a commit per request). The hand-written handler runs twice: on
the default asyncio loop, as a user would write it, and on uvloop, the loop
PiCloud runs on (the stricter comparison; both ratios are printed).

Usage: python bench/bench_kv.py [--seconds 10] [--rounds 3] [--connections 64]
           [--profile DIR]
With ``--profile``, one more PiCloud run under py-spy writes the collapsed
stacks of the front door and of each host to DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import uuid
from pathlib import Path

import aiohttp
from bench_ingress import Point, admin_key, profile, wrk
from harness import embedded_postgres, local_ray, spawn_listener

from picloud import event_loop
from picloud.config import Settings
from picloud.server import Server

SET_ONE = """
kv.collection("bench"):set(ctx.request.query.k, {n = 1, at = ctx.request.query.k})
return {ok = true}
"""

# wrk makes every request's key unique, so each write inserts a new row: a
# counter, salted per wrk run (wrk's math.random is unseeded, so every run
# would draw the same numbers and repeat the previous run's keys).
WRK_SCRIPT = """
counter = 0
init = function(args) salt = args[1] end
request = function()
  counter = counter + 1
  return wrk.format("POST", wrk.path .. "?k=" .. salt .. "-" .. counter)
end
"""

_HANDWRITTEN = """
import asyncio, sys
import asyncpg
from aiohttp import web

DSN = sys.argv[1]

async def main():
    pool = await asyncpg.create_pool(DSN, min_size=10, max_size=10)
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS bench_kv"
        " (key text PRIMARY KEY, value jsonb NOT NULL)"
    )

    async def put(request):
        key = request.query["k"]
        await pool.execute(
            "INSERT INTO bench_kv (key, value) VALUES ($1, $2::jsonb)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            key, '{"n": 1, "at": "' + key + '"}',
        )
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/set", put)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

if sys.argv[2] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""


async def start_handwritten(
    dsn: str, loop: str
) -> tuple[asyncio.subprocess.Process, str]:
    proc, port = await spawn_listener(_HANDWRITTEN, dsn, loop)
    return proc, f"http://127.0.0.1:{port}/set"


async def wrk_post(url: str, connections: int, seconds: float, script: Path) -> Point:
    salt = uuid.uuid4().hex[:12]  # the key salt of WRK_SCRIPT
    return await wrk(url, connections, seconds, script, salt)


async def setup_route(server: Server, headers: dict[str, str] | None = None) -> str:
    """The kv.set route's URL; ``headers`` carry an admin's key (else made)."""
    if headers is None:
        headers = {"Authorization": f"Bearer {await admin_key(server)}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for method, path, body in [
            ("POST", "/api/v1/admin/apps", {"slug": "kvbench", "name": "kv"}),
            (
                "POST",
                "/api/v1/admin/apps/kvbench/scripts",
                {"name": "put", "source": SET_ONE},
            ),
        ]:
            async with session.request(method, server.url + path, json=body) as r:
                made = await r.json()
                assert r.status == 201, made
        route = {"method": "POST", "path": "/set"}
        async with session.post(
            f"{server.url}/api/v1/admin/scripts/{made['id']}/routes", json=route
        ) as r:
            assert r.status == 201, await r.text()
    return f"{server.apps_url}/apps/kvbench/set"


async def run(dsn: str, tmp: Path, args: argparse.Namespace) -> None:
    settings = Settings(
        http_port=0,
        apps_port=0,
        ray_namespace=f"bench-{uuid.uuid4().hex[:8]}",
        data_dir=str(tmp / "data"),
        log_level="WARNING",
    )
    server = Server(settings, dsn, owns_actors=True)
    await server.start()
    hands = {
        name: await start_handwritten(dsn, loop)
        for name, loop in (("hand-written", "asyncio"), ("hand, uvloop", "uvloop"))
    }
    script = tmp / "unique-keys.lua"
    script.write_text(WRK_SCRIPT)
    try:
        urls = {"picloud": await setup_route(server)}
        urls |= {name: url for name, (_, url) in hands.items()}
        for url in urls.values():  # warm-up
            await wrk_post(url, args.connections, 2, script)
        points: dict[str, list[Point]] = {name: [] for name in urls}
        for _ in range(args.rounds):
            for name, url in urls.items():
                points[name].append(
                    await wrk_post(url, args.connections, args.seconds, script)
                )
        print(
            f"durable kv.set per request, {args.connections} connections,"
            f" {args.seconds:g} s x {args.rounds}"
        )
        medians = {}
        for name, runs in points.items():
            rps = statistics.median(p.rps for p in runs)
            medians[name] = rps
            p50 = statistics.median(p.p50_ms for p in runs)
            p99 = statistics.median(p.p99_ms for p in runs)
            errors = sum(p.errors for p in runs)
            rounds = ", ".join(f"{p.rps:,.0f}" for p in runs)
            print(
                f"  {name:<13} {rps:>8,.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:7.2f} ms"
                f"  errors {errors}  (rounds: {rounds})"
            )
        for name in hands:
            ratio = medians["picloud"] / medians[name]
            print(f"  ratio picloud / {name}: {ratio:.2f} (target >= 1.0)")
        async with server.services.log.pool.acquire() as conn:  # type: ignore[union-attr]
            stored = await conn.fetchval("SELECT count(*) FROM kv_entries")
            events, commits = await conn.fetchrow(
                "SELECT count(*), count(DISTINCT txid) FROM events"
                " WHERE type = 'kv.set.v1'"
            )
            scans = await conn.fetchrow(
                "SELECT seq_scan, seq_tup_read, idx_scan FROM pg_stat_user_tables"
                " WHERE relname = 'kv_entries'"
            )
        print(
            f"  PiCloud stored {stored:,} entries from {events:,} kv.set events"
            f" in {commits:,} commits ({events / commits:.1f} sets per group commit)"
        )
        print(
            f"  kv_entries: {scans['seq_scan']:,} sequential scans reading"
            f" {scans['seq_tup_read']:,} rows, {scans['idx_scan']:,} index scans"
        )
        if args.profile is not None:
            await profile(
                server,
                lambda: wrk_post(
                    urls["picloud"], args.connections, args.seconds, script
                ),
                args.seconds,
                args.profile,
            )
    finally:
        for proc, _ in hands.values():
            proc.terminate()
            await proc.wait()
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with embedded_postgres() as (dsn, _, home), local_ray():
        event_loop.run(run(dsn, home, args))


if __name__ == "__main__":
    main()
