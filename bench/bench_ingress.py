"""The front door against its ceiling, memory per active app, activation time.

One run, one real server: an embedded Postgres and a local Ray in a temporary
directory, a PiCloud Server on loopback (``app_hosts=2``, logging at WARNING)
and, in a separate process, a bare aiohttp hello handler (on uvloop, the loop
the front door runs on: the front door's true ceiling). It prints:
- wrk's requests/s and p50/p99 latency of a hello-world sync route
  (``return "hello"``) at 1, 16 and 64 connections, next to the bare handler,
  and the ratio PiCloud/bare; the two are measured alternately, every point
  ``--rounds`` times after a warm-up, and the medians are shown; with the CPU
  time per request of each process (bare; PiCloud's front door, hosts and
  Postgres) and the sequential scans Postgres made of the events table;
- the same route of a second app whose host is, in the front door's eyes,
  a process that answers every call at once over the real channel ("front
  door alone"): the front door's own ceiling, with no actor, script or
  commit behind it;
- the USS of the AppHost processes, freshly restarted and warmed with one app
  each, before and after activating ``--apps`` apps with one request each;
- the time of the first request to a passivated app (activation included),
  next to a request to an active one, over ``--activations`` apps; and the
  activation of the app that took the load, whose stream is long.

Usage: python bench/bench_ingress.py [--seconds 10] [--rounds 3] [--apps 200]
           [--activations 50] [--profile DIR]
Needs wrk (Debian: apt-get install wrk), psutil (the bench extra) and, for
``--profile``, py-spy (one more run at 64 connections, with the collapsed
stacks of the front door and of each host written to DIR).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from harness import embedded_postgres, local_ray, pct, spawn_listener

from picloud import event_loop
from picloud.config import Settings
from picloud.domain.access import ALL_SCOPES
from picloud.domain.commands import Deactivate
from picloud.domain.credentials import hash_password, new_api_key
from picloud.domain.identity import CreateApiKey, CreateUser
from picloud.domain.records import KeyRecord, UserRecord
from picloud.errors import PiCloudError
from picloud.events import EventMeta
from picloud.hosting._channel import open_channel
from picloud.server import Server

CONCURRENCY = (1, 16, 64)
HELLO = 'return "hello"'
MIB = 1024 * 1024


# -- wrk ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Point:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: dict[str, float] = dataclasses.field(default_factory=dict)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise RuntimeError(f"wrk printed a latency of {text!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def parse_wrk(output: str) -> Point:
    """Requests/s, p50 and p99 from ``wrk --latency``; errors = non-2xx + socket."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if rps is None or p50 is None or p99 is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    errors = sum(
        int(n)
        for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", output)
        + re.findall(r"(?:connect|read|write|timeout) (\d+)", output)
    )
    return Point(float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), errors)


async def wrk(
    url: str,
    connections: int,
    seconds: float,
    script: Path | None = None,
    *script_args: str,
) -> Point:
    """One closed-loop wrk run (one thread, so it takes at most one core),
    optionally with a Lua ``script`` and its arguments."""
    scripted = [] if script is None else ["-s", str(script)]
    tail = ["--", *script_args] if script_args else []
    proc = await asyncio.create_subprocess_exec(
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "--latency",
        *scripted,
        url,
        *tail,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return parse_wrk(out.decode())


# -- the bare handler (a separate process that imports neither Ray nor PiCloud) ----

_BARE_SERVER = """
import asyncio
import sys

import uvloop

from aiohttp import web

async def hello(request):
    return web.Response(text="hello")

async def main():
    app = web.Application()
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

uvloop.run(main())
"""


async def start_bare() -> tuple[asyncio.subprocess.Process, str]:
    proc, port = await spawn_listener(_BARE_SERVER)
    return proc, f"http://127.0.0.1:{port}/hello"


_INSTANT_HOST = """
import asyncio
import sys

import uvloop

from picloud.hosting._channel import ChannelServerProtocol
from picloud.actors.protocol import HttpReply, ReplyFrame

HELLO = HttpReply(status=200, headers={"Content-Type": "text/plain"}, body=b"hello")

def dispatch(call, respond):
    respond(ReplyFrame(call.id, HELLO))

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: ChannelServerProtocol(dispatch, sys.argv[1]), "127.0.0.1", 0
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

uvloop.run(main())
"""


@contextlib.asynccontextmanager
async def instant_host(server: Server, app_id: str) -> AsyncIterator[Pids]:
    """While open, the front door sends ``app_id``'s host's calls to a process
    that answers each at once; yields that process's pids."""
    assert server.services is not None
    secret = server.settings.cluster_secret or ""
    proc, port = await spawn_listener(_INSTANT_HOST, secret)
    link = server.services.hosts.link_for(app_id)
    real = link._channel  # the bench swaps the channel, nothing else
    try:
        link._channel = swapped = await open_channel("127.0.0.1", port, secret)
        try:
            yield lambda: [proc.pid]
        finally:
            link._channel = real
            swapped.close()
    finally:
        proc.terminate()
        await proc.wait()


async def every_host_live(server: Server, seconds: float = 30.0) -> None:
    """Wait until the front door's membership lists every shared host (they
    beat into the registry as they come up; apps made earlier would all be
    placed on the first)."""
    assert server.services is not None
    wanted = server.settings.app_hosts
    deadline = time.monotonic() + seconds
    while len(server.services.hosts.membership.names) < wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {wanted} app hosts came up")
        await asyncio.sleep(0.1)


def other_host_app(server: Server, app_id: str, apps: dict[str, str]) -> str | None:
    """The slug of an app placed on another host than ``app_id`` (None: all
    of ``apps`` are on its host, as rendezvous may place a few apps)."""
    assert server.services is not None
    hosts = server.services.hosts
    taken = hosts.link_for(app_id)
    return next((s for s, a in apps.items() if hosts.link_for(a) is not taken), None)


# -- set-up through the admin API --------------------------------------------------


async def admin_key(server: Server) -> str:
    """An instance admin's key of every scope, made through the ControlPlane."""
    assert server.services is not None
    control, meta = server.services.control, EventMeta(actor="bench")
    hashed = await asyncio.to_thread(hash_password, uuid.uuid4().hex)
    user = await control.execute_as(
        UserRecord,
        CreateUser(username="bench", password_hash=hashed, admin=True),
        meta,
    )
    made = new_api_key()
    command = CreateApiKey(
        user=user.id,
        name="bench",
        prefix=made.prefix,
        secret_hash=made.hash,
        scopes=tuple(sorted(ALL_SCOPES)),
    )
    await control.execute_as(KeyRecord, command, meta)
    return made.secret


async def _post(session: aiohttp.ClientSession, url: str, body: Any) -> Any:
    async with session.post(url, json=body) as response:
        answer = await response.json()
        if response.status != 201:
            raise RuntimeError(f"POST {url}: {response.status} {answer}")
        return answer


async def hello_app(session: aiohttp.ClientSession, base: str, slug: str) -> str:
    """Create an app with ``GET /hello`` → ``return "hello"``; return its id."""
    app = await _post(
        session, f"{base}/api/v1/admin/apps", {"slug": slug, "name": slug}
    )
    script = await _post(
        session,
        f"{base}/api/v1/admin/apps/{app['id']}/scripts",
        {"name": "hello", "source": HELLO},
    )
    await _post(
        session,
        f"{base}/api/v1/admin/scripts/{script['id']}/routes",
        {"method": "GET", "path": "/hello"},
    )
    return str(app["id"])


async def get_hello(session: aiohttp.ClientSession, base: str, slug: str) -> float:
    """One request to the app's hello route; its latency in ms."""
    started = time.perf_counter()
    async with session.get(f"{base}/apps/{slug}/hello") as response:
        body = await response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200 or body != b"hello":
        raise RuntimeError(f"{slug}: {response.status} {body[:200]!r}")
    return elapsed


async def bounded(jobs: list[Any], parallel: int) -> list[Any]:
    gate = asyncio.Semaphore(parallel)

    async def one(job: Any) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(one(j) for j in jobs))


# -- 1. throughput and latency -----------------------------------------------------


Pids = Callable[[], list[int]]
"""The processes of one component, looked up at each reading (backends come and go)."""


def cpu_seconds(pids: list[int]) -> float:
    """The CPU time of these processes; a postmaster's counts the backends it
    has reaped too: PiCloud's pool recycles idle connections, and a backend
    that exits during a point took its CPU with it (profile_path showed
    Postgres at -31 µs a request)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(pid)
            times = process.cpu_times()
            total += times.user + times.system
            if process.name() == "postgres":  # backends reap nothing: 0 there
                total += times.children_user + times.children_system
    return total


async def measure(
    url: str,
    connections: int,
    seconds: float,
    parts: dict[str, Pids],
    script: tuple[Path, str] | None = None,
) -> Point:
    """A wrk point (``script``: wrk's Lua script and its argument) with the
    CPU time each part used per request (µs)."""
    before = {name: cpu_seconds(pids()) for name, pids in parts.items()}
    point = await wrk(url, connections, seconds, *(script or ()))
    requests = max(1.0, point.rps * max(1, round(seconds)))
    used = {
        name: (cpu_seconds(pids()) - before[name]) / requests * 1e6
        for name, pids in parts.items()
    }
    return dataclasses.replace(point, cpu_us=used)


async def throughput(
    targets: dict[str, tuple[str, dict[str, Pids]]], args: argparse.Namespace
) -> None:
    for url, _ in targets.values():  # warm-up: connections, caches, allocators
        await wrk(url, 16, 2)
    points: dict[tuple[str, int], list[Point]] = {}
    for _ in range(args.rounds):
        for c in CONCURRENCY:
            for name, (url, parts) in targets.items():
                point = await measure(url, c, args.seconds, parts)
                points.setdefault((name, c), []).append(point)
    medians = {key: median_point(value) for key, value in points.items()}
    print(
        f"\n1. hello-world sync route vs bare aiohttp: wrk -t1, {args.seconds:g} s"
        f" per point, medians of {args.rounds} rounds (alternating)"
    )
    print(
        f"{'clients':>7} | {'bare req/s':>10} {'p50 ms':>7} {'p99 ms':>7}"
        f" | {'picloud req/s':>13} {'p50 ms':>7} {'p99 ms':>7} | {'ratio':>5}"
        f" | {'fd alone':>8} {'p99 ms':>7} {'ratio':>5} | picloud req/s per round"
    )
    for c in CONCURRENCY:
        bare, pic = medians[("bare", c)], medians[("picloud", c)]
        alone = medians[("front door alone", c)]
        rounds = ", ".join(f"{p.rps:,.0f}" for p in points[("picloud", c)])
        errors = bare.errors + pic.errors + alone.errors
        print(
            f"{c:>7} | {bare.rps:>10,.0f} {bare.p50_ms:>7.2f} {bare.p99_ms:>7.2f}"
            f" | {pic.rps:>13,.0f} {pic.p50_ms:>7.2f} {pic.p99_ms:>7.2f}"
            f" | {pic.rps / bare.rps:>5.3f}"
            f" | {alone.rps:>8,.0f} {alone.p99_ms:>7.2f} {alone.rps / bare.rps:>5.3f}"
            f" | {rounds}" + (f"  ({errors} errors)" if errors else "")
        )
    _print_targets(medians)
    _print_cpu(medians)


def _print_targets(medians: dict[tuple[str, int], Point]) -> None:
    pic, bare = medians[("picloud", 64)], medians[("bare", 64)]
    met = pic.rps >= bare.rps / 2 and pic.p99_ms < 10
    print(
        f"   target at 64 clients: ratio >= 0.5 and p99 < 10 ms ->"
        f" {pic.rps / bare.rps:.3f}, {pic.p99_ms:.2f} ms"
        f" ({'met' if met else 'NOT met'})"
    )
    print(
        "   a run that wrote nothing answers once what it could observe is durable;"
        "\n   its execution record joins the next group commit (nobody waits for it)"
    )


def _print_cpu(medians: dict[tuple[str, int], Point]) -> None:
    print(
        "   CPU time per request (µs, medians; the front door's includes this"
        " process's Ray driver threads)"
    )
    print(f"   {'':<32}" + "".join(f"{c:>8}" for c in CONCURRENCY))
    for target in dict.fromkeys(name for name, _ in medians):
        names = list(medians[(target, CONCURRENCY[0])].cpu_us)
        for name in [*names, "total"] if len(names) > 1 else names:
            row = [
                sum(medians[(target, c)].cpu_us.values())
                if name == "total"
                else medians[(target, c)].cpu_us[name]
                for c in CONCURRENCY
            ]
            label = f"{target} {name}" if name != target else target
            print(f"   {label:<32}" + "".join(f"{v:>8,.0f}" for v in row))


_SCANS = """
SELECT (SELECT count(*) FROM events) AS events,
       (SELECT count(*) FROM events WHERE type = 'invocation.recorded.v1')
           AS executions,
       seq_scan, seq_tup_read
FROM pg_stat_user_tables WHERE relname = 'events'
"""


async def table_scans(server: Server) -> dict[str, int]:
    """Sequential scans of ``events`` so far (Postgres publishes them within ~1 s)."""
    assert server.services is not None
    await asyncio.sleep(1.5)
    row = await server.services.log.pool.fetchrow(_SCANS)
    return dict(row)


def print_scans(before: dict[str, int], after: dict[str, int]) -> None:
    served = max(1, after["executions"] - before["executions"])
    scans = after["seq_scan"] - before["seq_scan"]
    rows = after["seq_tup_read"] - before["seq_tup_read"]
    print(
        f"   Postgres during part 1: {served:,} invocations, {scans:,} sequential"
        f" scans of the events table ({before['events']:,} -> {after['events']:,}"
        f" rows) reading {rows:,} rows, {rows / served:,.0f} per request"
    )


def median_point(points: list[Point]) -> Point:
    return Point(
        statistics.median(p.rps for p in points),
        statistics.median(p.p50_ms for p in points),
        statistics.median(p.p99_ms for p in points),
        sum(p.errors for p in points),
        {
            name: statistics.median(p.cpu_us[name] for p in points)
            for name in points[0].cpu_us
        },
    )


async def profile(
    server: Server, load: Callable[[], Awaitable[Point]], seconds: float, out: Path
) -> None:
    """py-spy stacks of this process (the front door) and each host under load."""
    assert server.services is not None
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    pids = {"frontdoor": os.getpid()}
    for name, link in server.services.hosts.links.items():
        pids[name] = await link.pid()
    record_s = max(1, round(seconds) - 2)
    spies = [
        await asyncio.create_subprocess_exec(
            "py-spy", "record", "--nonblocking", "-r", "200", "-d", str(record_s),
            "-f", "raw", "-o", str(out / f"{name}.txt"), "--pid", str(pid),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]  # fmt: skip
    point = await load()
    for spy in spies:
        await spy.wait()
    print(f"   profiled run: {point.rps:,.0f} req/s; stacks in {out}")


# -- 2. memory per active app ------------------------------------------------------


async def restart_hosts(server: Server) -> dict[str, int]:
    """Kill every shared host; Ray restarts it. Its apps passivate with it."""
    assert server.services is not None
    links = server.services.hosts.links
    # Calls to a host Ray is restarting warn; here that is the point.
    logging.getLogger("picloud.hosting._remote").setLevel(logging.ERROR)
    old = {name: await link.pid() for name, link in links.items()}
    for pid in old.values():
        os.kill(pid, signal.SIGKILL)
    new: dict[str, int] = {}
    for name, link in links.items():
        while name not in new:
            try:
                pid = await link.pid(seconds=5.0)
            except PiCloudError:
                pid = old[name]
            if pid != old[name]:
                new[name] = pid
            else:
                await asyncio.sleep(0.2)
    return new


def uss(pids: dict[str, int]) -> int:
    return sum(psutil.Process(pid).memory_full_info().uss for pid in pids.values())


async def memory(
    server: Server, session: aiohttp.ClientSession, apps: dict[str, str], n: int
) -> list[str]:
    """USS per active app; returns the slugs left active (for part 3)."""
    assert server.services is not None
    hosts = server.services.hosts
    print(
        f"\n2. memory: USS of the {len(hosts.links)} AppHost processes, killed and"
        f" restarted by Ray (which reports them\n   as dead workers), each warmed"
        f" with one app, before and after activating {n} apps"
    )
    pids = await restart_hosts(server)
    warm: dict[str, str] = {}
    for slug, app_id in apps.items():
        warm.setdefault(hosts.link_for(app_id).name, slug)
    for slug in warm.values():  # the host's fixed costs: pool, Lua, imports
        for _ in range(20):
            await get_hello(session, server.apps_url, slug)
    measured = [s for s in apps if s not in warm.values()][:n]
    await asyncio.sleep(1.0)
    sizes = [uss(pids)]
    half = len(measured) // 2
    for part in (measured[:half], measured[half:]):
        await bounded([get_hello(session, server.apps_url, s) for s in part], 4)
        await asyncio.sleep(1.0)
        sizes.append(uss(pids))
    per_app = (sizes[2] - sizes[0]) / len(measured)
    print(
        f"   0 apps {sizes[0] / MIB:,.1f} MiB, {half} apps {sizes[1] / MIB:,.1f} MiB,"
        f" {len(measured)} apps {sizes[2] / MIB:,.1f} MiB"
    )
    print(
        f"   per active app: {per_app / 1024:,.0f} KiB (first half"
        f" {(sizes[1] - sizes[0]) / half / 1024:,.0f} KiB, second half"
        f" {(sizes[2] - sizes[1]) / (len(measured) - half) / 1024:,.0f} KiB);"
        f" target <= 2 MiB -> {'met' if per_app <= 2 * MIB else 'NOT met'}"
    )
    return measured


# -- 3. activation -----------------------------------------------------------------


async def activation_round(
    server: Server, session: aiohttp.ClientSession, apps: dict[str, str]
) -> tuple[list[float], list[float]]:
    """Passivate the apps, then time a first (activating) and a second request each."""
    assert server.services is not None
    for app_id in apps.values():
        await server.services.hosts.call(app_id, Deactivate(), 10)
    await asyncio.sleep(1.0)  # let the passivations finish
    first, second = [], []
    for slug in apps:
        first.append(await get_hello(session, server.apps_url, slug))
        second.append(await get_hello(session, server.apps_url, slug))
    return first, second


async def activation(
    server: Server,
    session: aiohttp.ClientSession,
    apps: dict[str, str],
    rounds: int,
) -> None:
    cold: list[list[float]] = []
    warm: list[list[float]] = []
    for _ in range(rounds):
        first, second = await activation_round(server, session, apps)
        cold.append(first)
        warm.append(second)
    print(
        f"\n3. activation: first request to each of {len(apps)} passivated apps"
        f" vs the next one, sequential; medians of {rounds} rounds"
    )
    for label, runs in (("passivated (activates)", cold), ("active", warm)):
        p50 = statistics.median(pct(r, 0.5) for r in runs)
        p99 = statistics.median(pct(r, 0.99) for r in runs)
        per_round = ", ".join(f"{pct(r, 0.5):.1f}" for r in runs)
        print(
            f"   {label:<22} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
            f"  (p50 per round: {per_round})"
        )
    p99 = statistics.median(pct(r, 0.99) for r in cold)
    print(f"   target < 100 ms -> {'met' if p99 < 100 else 'NOT met'} (p99)")


async def long_stream_activation(
    server: Server, session: aiohttp.ClientSession, slug: str, app_id: str
) -> None:
    """The app that took the load: its stream is long; how fast does it come back?"""
    assert server.services is not None
    pool = server.services.log.pool
    stream = f"app-{app_id}"
    length = await pool.fetchval(
        "SELECT max(stream_version) FROM events WHERE stream = $1", stream
    )
    snapshot = await pool.fetchval(
        "SELECT version FROM snapshots WHERE stream = $1", stream
    )
    await server.services.hosts.call(app_id, Deactivate(), 10)
    await asyncio.sleep(1.0)
    cold = await get_hello(session, server.apps_url, slug)
    print(
        f"   the loaded app ({length:,} events, snapshot at {snapshot or 0:,}):"
        f" first request after passivation {cold:,.1f} ms"
    )


# -- the run -----------------------------------------------------------------------


async def make_apps(
    session: aiohttp.ClientSession, base: str, count: int
) -> dict[str, str]:
    prefix = f"b{uuid.uuid4().hex[:6]}"
    slugs = [f"{prefix}-{i}" for i in range(count)]
    ids = await bounded([hello_app(session, base, s) for s in slugs], 8)
    return dict(zip(slugs, ids, strict=True))


def postgres_pids(pgdata: Path) -> Pids:
    """The postmaster and its backends (the bench's own embedded server)."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])

    def pids() -> list[int]:
        with contextlib.suppress(psutil.NoSuchProcess):
            children = psutil.Process(postmaster).children()
            return [postmaster, *(child.pid for child in children)]
        return []

    return pids


async def targets(
    server: Server,
    slugs: tuple[str, str],
    bare: tuple[asyncio.subprocess.Process, str],
    pg: Pids,
    instant: Pids,
) -> dict[str, tuple[str, dict[str, Pids]]]:
    """What wrk loads, and the processes whose CPU time each request costs:
    the bare handler, PiCloud, and the front door with the instant host."""
    assert server.services is not None
    hosts = [await link.pid() for link in server.services.hosts.links.values()]
    picloud = {
        "front door": lambda: [os.getpid()],
        "hosts": lambda: hosts,
        "postgres": pg,
    }
    alone = {"front door": lambda: [os.getpid()], "instant host": instant}
    proc, url = bare
    return {
        "bare": (url, {"bare": lambda: [proc.pid]}),
        "picloud": (f"{server.apps_url}/apps/{slugs[0]}/hello", picloud),
        "front door alone": (f"{server.apps_url}/apps/{slugs[1]}/hello", alone),
    }


async def run(dsn: str, tmp: Path, args: argparse.Namespace) -> None:
    settings = Settings(
        http_port=0,
        apps_port=0,
        ray_namespace=f"bench-{uuid.uuid4().hex[:8]}",
        data_dir=str(tmp / "data"),
        log_level="WARNING",
        app_hosts=2,
    )
    server = Server(settings, dsn, owns_actors=True)
    await server.start()
    bare = await start_bare()
    try:
        headers = {"Authorization": f"Bearer {await admin_key(server)}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            started = time.perf_counter()
            (hello,) = (await make_apps(session, server.url, 1)).items()
            apps = await make_apps(session, server.url, args.apps + args.app_hosts)
            print(
                f"set-up: {len(apps) + 1} apps with a hello route in"
                f" {time.perf_counter() - started:.1f} s"
            )
            alone = other_host_app(server, hello[1], apps)
            if alone is None:
                raise RuntimeError(f"all {len(apps)} apps are on one host")
            async with instant_host(server, apps[alone]) as instant:
                slugs = (hello[0], alone)
                loads = await targets(server, slugs, bare, args.postgres, instant)
                scans = await table_scans(server)
                await throughput(loads, args)
                print_scans(scans, await table_scans(server))
            if args.profile is not None:
                url = f"{server.apps_url}/apps/{hello[0]}/hello"
                await profile(server, lambda: wrk(url, 64, args.seconds),
                              args.seconds, args.profile)  # fmt: skip
            measured = await memory(server, session, apps, args.apps)
            chosen = {s: apps[s] for s in measured[: args.activations]}
            await activation(server, session, chosen, args.rounds)
            await long_stream_activation(server, session, *hello)
    finally:
        bare[0].terminate()
        await bare[0].wait()
        await server.stop()


def revision() -> str:
    here = Path(__file__).parent
    head = subprocess.run(
        ["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(here), "status", "--porcelain", "--", "../picloud"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{head or 'unknown'}{' with local changes' if dirty else ''}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--activations", type=int, default=50)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found (Debian: apt-get install wrk)")
    args.app_hosts = 2  # one warm-up app per host is not counted
    logging.basicConfig(level=logging.WARNING)
    print(
        f"machine: {os.cpu_count()} cores, load average"
        f" {', '.join(f'{x:.2f}' for x in os.getloadavg())}; code {revision()}"
    )
    with embedded_postgres() as (dsn, embedded, home):
        args.postgres = postgres_pids(embedded.pgdata)
        with local_ray():
            event_loop.run(run(dsn, home, args))


if __name__ == "__main__":
    main()
