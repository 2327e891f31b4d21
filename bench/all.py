"""PiCloud against its peers, measured in one run and printed as one table.

One embedded Postgres, one local Ray, one PiCloud server (two hosts) and,
each in a process of its own, the peers:
- hello (``GET`` → ``hello``) at 1, 16 and 64 clients: PiCloud's sync route
  ``return "hello"``; bare aiohttp on uvloop; nginx with lua-nginx-module
  (``content_by_lua_block``, one worker: one core, like the others); and
  PiCloud's front door alone (a host that answers every call at once over
  the real channel: the front door and its hop, no actor, script or commit);
- durable ``kv.set`` per request at 64 clients: PiCloud's route against the
  hand-written aiohttp + asyncpg upsert (bench_kv's), on uvloop (PiCloud's
  loop) and on asyncio;
- the event log's append, one appender, batches of 100: ``EventLog.append``
  against a raw COPY of the same rows (no version check, no answer: the
  table's own ceiling) and against the ``eventsourcing`` library's Postgres
  application recorder inserting the same payloads (in a database of its own).

Each figure is the median of ``--rounds`` rounds (default 5) in which the
targets alternate, so a noisy neighbour hits them all alike; the load
average is printed before and after. Beside each point, the CPU time per
request of every process of the target (psutil) and of wrk; then the bounds
those imply on this machine and with a core per process.

Set-up: wrk, nginx and its lua module come from Debian (``apt-get install
wrk nginx libnginx-mod-http-lua``), installed here when missing (as root);
``eventsourcing[postgres]`` and psutil come with the ``bench`` extra.

Usage: python bench/all.py [--seconds 5] [--rounds 5] [--only hello kv log]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import asyncpg
import psutil
from bench_eventlog import append_rate, copy_rate, event
from bench_ingress import (
    CONCURRENCY,
    Pids,
    Point,
    admin_key,
    every_host_live,
    instant_host,
    make_apps,
    measure,
    median_point,
    other_host_app,
    postgres_pids,
    revision,
    start_bare,
)
from bench_kv import WRK_SCRIPT, setup_route, start_handwritten, wrk_post
from harness import embedded_postgres, local_ray

from picloud import event_loop
from picloud.config import Settings
from picloud.events import encode
from picloud.server import Server
from picloud.store import CommitSignals, EventLog
from picloud.store._pool import create_pool
from picloud.store.eventlog import event_type
from picloud.store.migrations import apply_migrations

LUA_MODULE = Path("/usr/lib/nginx/modules/ngx_http_lua_module.so")
BATCH = 100

# -- set-up -------------------------------------------------------------------------


def ensure_tools() -> None:
    """wrk, nginx and its lua module, from Debian when missing."""
    missing = [
        package
        for package, present in (
            ("wrk", shutil.which("wrk") is not None),
            ("nginx", shutil.which("nginx") is not None),
            ("libnginx-mod-http-lua", LUA_MODULE.exists()),
        )
        if not present
    ]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"missing {', '.join(missing)}: apt-get install them as root")
    print(f"installing {', '.join(missing)} with apt-get", flush=True)
    install = ["apt-get", "install", "-y", "-q", *missing]
    if subprocess.run(install, check=False, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(install, check=True, capture_output=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


_NGINX_CONF = """
load_module modules/ndk_http_module.so;
load_module modules/ngx_http_lua_module.so;
worker_processes 1;
daemon off;
pid {home}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {home}/body;
  server {{
    listen 127.0.0.1:{port};
    location = /hello {{
      default_type text/plain;
      content_by_lua_block {{ ngx.print("hello") }}
    }}
  }}
}}
"""


@contextlib.asynccontextmanager
async def nginx_hello(home: Path) -> AsyncIterator[tuple[str, Pids]]:
    """nginx + lua serving the hello; yields its URL and its processes."""
    port = free_port()
    conf = home / "nginx.conf"
    await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(conf.write_text, _NGINX_CONF.format(home=home, port=port))
    proc = await asyncio.create_subprocess_exec(
        "nginx", "-p", "/usr/share/nginx", "-c", str(conf),
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/hello"
    try:
        await _answering(url)
        master = psutil.Process(proc.pid)
        yield url, lambda: [master.pid, *(c.pid for c in master.children())]
    finally:
        proc.terminate()
        await proc.wait()


async def _answering(url: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as response:
                    if await response.text() == "hello":
                        return
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)


# -- measuring ----------------------------------------------------------------------


def children_cpu() -> float:
    """CPU seconds of the reaped child processes (wrk, after each run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def measured(
    url: str,
    clients: int,
    seconds: float,
    parts: dict[str, Pids],
    script: tuple[Path, str] | None = None,
) -> Point:
    """A wrk point with the CPU per request of each part and of wrk (µs)."""
    before = children_cpu()
    point = await measure(url, clients, seconds, parts, script)
    requests = max(1.0, point.rps * max(1, round(seconds)))
    cpu = dict(point.cpu_us, wrk=(children_cpu() - before) / requests * 1e6)
    return dataclasses.replace(point, cpu_us=cpu)


@dataclasses.dataclass
class Rounds:
    """The points of each (target, clients) over the rounds."""

    points: dict[tuple[str, int], list[Point]] = dataclasses.field(default_factory=dict)

    def add(self, target: str, clients: int, point: Point) -> None:
        self.points.setdefault((target, clients), []).append(point)

    def median(self, target: str, clients: int) -> Point:
        return median_point(self.points[(target, clients)])


# -- 1. hello -----------------------------------------------------------------------

Target = tuple[str, dict[str, Pids]]


async def hello_rounds(targets: dict[str, Target], args: argparse.Namespace) -> Rounds:
    for url, _ in targets.values():  # warm-up: connections, caches, allocators
        await measure(url, 16, 2, {})
    rounds = Rounds()
    for n in range(args.rounds):
        for clients in CONCURRENCY:
            for name, (url, parts) in targets.items():
                rounds.add(
                    name, clients, await measured(url, clients, args.seconds, parts)
                )
        print(f"   hello round {n + 1} of {args.rounds} done", flush=True)
    return rounds


async def hello_targets(
    server: Server, pg: Pids, peers: dict[str, Target], slugs: tuple[str, str]
) -> dict[str, Target]:
    url, parts = await picloud_target(server, pg, slugs[0])
    return {"PiCloud": (url, parts), **peers}


async def picloud_target(server: Server, pg: Pids, slug: str = "") -> Target:
    """PiCloud's hello URL and its processes: the front door (this process),
    the app hosts and Postgres."""
    assert server.services is not None
    hosts = [await link.pid() for link in server.services.hosts.links.values()]
    front = lambda: [os.getpid()]  # noqa: E731  # the front door is this process
    picloud = {"front door": front, "hosts": lambda: hosts, "postgres": pg}
    return f"{server.apps_url}/apps/{slug}/hello", picloud


# -- 2. kv.set ----------------------------------------------------------------------


async def kv_rounds(
    targets: dict[str, Target], script: Path, args: argparse.Namespace
) -> Rounds:
    for url, _ in targets.values():
        await wrk_post(url, 64, 2, script)
    rounds = Rounds()
    for _ in range(args.rounds):
        for name, (url, parts) in targets.items():
            salted = (script, uuid.uuid4().hex[:12])  # unique keys per run
            point = await measured(url, 64, args.seconds, parts, salted)
            rounds.add(name, 64, point)
    return rounds


# -- 3. the event log ---------------------------------------------------------------


class EsRecorder:
    """The eventsourcing library's Postgres application recorder (its own
    table, in a database of its own), appending the same payloads."""

    def __init__(self, dsn: str) -> None:
        from eventsourcing.postgres import (  # noqa: PLC0415  # the bench extra
            PostgresApplicationRecorder,
            PostgresDatastore,
        )

        parts = urlsplit(dsn)
        host = parse_qs(parts.query).get("host", [parts.hostname or "127.0.0.1"])[0]
        self._datastore = PostgresDatastore(
            dbname=parts.path.lstrip("/"),
            host=host,
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=parts.password or "",
        )
        self._recorder = PostgresApplicationRecorder(self._datastore)
        self._recorder.create_table()
        self._payloads = [(event_type(e), encode(e)) for e in map(event, range(BATCH))]

    def rate(self, seconds: float) -> float:
        """Events/s of ``insert_events`` in batches of 100, one originator."""
        from eventsourcing.persistence import StoredEvent  # noqa: PLC0415

        originator, version, written = uuid.uuid4(), 0, 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            batch = [
                StoredEvent(
                    originator_id=originator,
                    originator_version=version + n,
                    topic=topic,
                    state=state,
                )
                for n, (topic, state) in enumerate(self._payloads, 1)
            ]
            self._recorder.insert_events(batch)
            version += BATCH
            written += BATCH
        return written / (time.perf_counter() - started)

    def close(self) -> None:
        self._datastore.close()


async def eventlog_rounds(
    log_dsn: str, es_dsn: str, args: argparse.Namespace
) -> Rounds:
    conn = await asyncpg.connect(log_dsn)
    await apply_migrations(conn)
    await conn.close()
    pool = await create_pool(log_dsn, Settings(db_pool_min=1, db_pool_max=2))
    log = EventLog(pool, CommitSignals())
    es = await asyncio.to_thread(EsRecorder, es_dsn)
    seconds = args.log_seconds
    variants: dict[str, Callable[[], Awaitable[float]]] = {
        "EventLog.append": lambda: append_rate(log, BATCH, seconds),
        "raw COPY of the rows": lambda: copy_rate(pool, BATCH, seconds),
        "eventsourcing recorder": lambda: asyncio.to_thread(es.rate, seconds),
    }
    rounds = Rounds()
    try:
        for once in variants.values():  # warm-up
            await once()
        for _ in range(args.rounds):
            for name, once in variants.items():
                rounds.add(name, BATCH, Point(await once(), 0.0, 0.0, 0))
    finally:
        await pool.close()
        await asyncio.to_thread(es.close)
    return rounds


# -- the table ----------------------------------------------------------------------


def _cpu(point: Point) -> str:
    return " + ".join(f"{name} {us:,.0f}" for name, us in point.cpu_us.items())


def _row(label: str, point: Point, versus: str) -> str:
    return (
        f"  {label:<34} {point.rps:>9,.0f} {point.p50_ms:>7.2f} {point.p99_ms:>8.2f}"
        f"  {versus:>7}  {_cpu(point)}"
    )


def print_hello(rounds: Rounds) -> dict[str, bool]:
    print(
        f"\n1. hello        {'':<21} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>8}"
        f"  {'/aiohttp':>7}  CPU µs per request (median)"
    )
    met = {}
    for clients in CONCURRENCY:
        bare = rounds.median("bare aiohttp", clients)
        print(f"  {clients} client{'s' if clients > 1 else ''}")
        for name in ("PiCloud", "bare aiohttp", "nginx + lua", "front door alone"):
            point = rounds.median(name, clients)
            print(_row(f"  {name}", point, f"{point.rps / bare.rps:.3f}x"))
        pic = rounds.median("PiCloud", clients)
        if clients == 1:
            met["hello 1-client p50 <= aiohttp's + 0.5 ms"] = (
                pic.p50_ms <= bare.p50_ms + 0.5
            )
        else:
            met[f"hello >= 0.5x aiohttp at {clients} clients"] = (
                pic.rps >= 0.5 * bare.rps
            )
        if clients == 16:
            met["hello p99 < 10 ms at 16 clients"] = pic.p99_ms < 10
    return met


def print_kv(rounds: Rounds) -> dict[str, bool]:
    print(
        f"\n2. durable kv.set, 64 clients {'':<6} {'req/s':>9} {'p50 ms':>7}"
        f" {'p99 ms':>8}  {'/hand':>7}"
    )
    hand = rounds.median("hand-written, uvloop", 64)
    for name in ("PiCloud", "hand-written, uvloop", "hand-written, asyncio"):
        point = rounds.median(name, 64)
        print(_row(f"  {name}", point, f"{point.rps / hand.rps:.3f}x"))
    pic = rounds.median("PiCloud", 64)
    return {
        "kv.set >= 1.1x the hand-written handler on uvloop": pic.rps >= 1.1 * hand.rps
    }


def print_eventlog(rounds: Rounds) -> dict[str, bool]:
    print("\n3. event log append, one appender, batches of 100    events/s")
    names = ("EventLog.append", "raw COPY of the rows", "eventsourcing recorder")
    rates = {name: rounds.median(name, BATCH).rps for name in names}
    for name, rate in rates.items():
        per_round = ", ".join(f"{p.rps:,.0f}" for p in rounds.points[(name, BATCH)])
        print(f"  {name:<48} {rate:>9,.0f}  (rounds: {per_round})")
    ours = rates["EventLog.append"]
    copy, es = rates["raw COPY of the rows"], rates["eventsourcing recorder"]
    print(
        f"  EventLog.append: {ours / copy:.3f}x the raw COPY,"
        f" {ours / es:.2f}x the eventsourcing recorder"
    )
    return {
        "append >= 0.8x the raw COPY": ours >= 0.8 * copy,
        "append >= 2x eventsourcing's recorder": ours >= 2 * es,
    }


def print_bounds(rounds: Rounds) -> None:
    """What the whole path costs, and what that allows here and on more cores."""
    print("\nbounds (CPU µs per request at 64 clients, medians):")
    pic, bare = rounds.median("PiCloud", 64), rounds.median("bare aiohttp", 64)
    alone, nginx = (
        rounds.median("front door alone", 64),
        rounds.median("nginx + lua", 64),
    )
    wrk_us = pic.cpu_us["wrk"]
    path = sum(us for name, us in pic.cpu_us.items() if name != "wrk")
    cores = os.cpu_count() or 1
    print(
        f"  PiCloud's whole path {path:,.0f} µs ({_cpu(pic)}); bare aiohttp"
        f" {bare.cpu_us['bare aiohttp']:,.0f}; nginx {nginx.cpu_us['nginx + lua']:,.0f}"
    )
    print(
        f"  on these {cores} cores, with wrk's {wrk_us:,.0f} µs: PiCloud <="
        f" {cores * 1e6 / (path + wrk_us):,.0f} req/s;"
        f" 0.5x of aiohttp needs <= {cores * 1e6 / (0.5 * bare.rps) - wrk_us:,.0f}"
        f" µs per request for the whole path"
    )
    empty = alone.cpu_us
    print(
        f"  an empty round trip (front door + hop, a host that answers at once):"
        f" {sum(v for k, v in empty.items() if k != 'wrk'):,.0f} µs of CPU,"
        f" p50 {rounds.median('front door alone', 1).p50_ms:.2f} ms at 1 client"
    )
    busiest = max(pic.cpu_us[name] for name in ("front door", "hosts"))
    print(
        f"  with a core per process: one app (one front door, one host)"
        f" <= {1e6 / busiest:,.0f} req/s (its busiest process),"
        f" bare aiohttp (one process) <= {1e6 / bare.cpu_us['bare aiohttp']:,.0f}"
        f" -> {bare.cpu_us['bare aiohttp'] / busiest:.2f}x; more apps spread over"
        " more hosts; Postgres' share runs beside them"
    )


# -- the run ------------------------------------------------------------------------


async def run(pg: tuple[str, Path, Pids], args: argparse.Namespace) -> dict[str, bool]:
    dsn, home, pg_pids = pg
    settings = Settings(
        http_port=0,
        apps_port=0,
        ray_namespace=f"bench-{uuid.uuid4().hex[:8]}",
        data_dir=str(home / "data"),
        log_level="WARNING",
        app_hosts=2,
    )
    server = Server(settings, dsn, owns_actors=True)
    await server.start()
    await every_host_live(server)
    bare_proc, bare_url = await start_bare()
    try:
        return await _measure_all(server, (bare_proc, bare_url), pg_pids, args)
    finally:
        bare_proc.terminate()
        await bare_proc.wait()
        await server.stop()


async def _measure_all(
    server: Server,
    bare: tuple[asyncio.subprocess.Process, str],
    pg: Pids,
    args: argparse.Namespace,
) -> dict[str, bool]:
    headers = {"Authorization": f"Bearer {await admin_key(server)}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        apps = await make_apps(session, server.url, 4)
        hello, hello_id = next(iter(apps.items()))
        # "front door alone" needs an app on the other host; rendezvous may
        # place four apps on one host (1 run in 8).
        while (alone := other_host_app(server, hello_id, apps)) is None:
            apps |= await make_apps(session, server.url, 4)
    picloud_parts: dict[str, Pids] = {}
    hello_points = kv_points = log_points = None
    if "hello" in args.only:
        async with (
            instant_host(server, apps[alone]) as instant,
            nginx_hello(args.home / "nginx") as (nginx_url, nginx_pids),
        ):
            front = lambda: [os.getpid()]  # noqa: E731  # the front door is this process
            peers = {
                "bare aiohttp": (bare[1], {"bare aiohttp": lambda: [bare[0].pid]}),
                "nginx + lua": (nginx_url, {"nginx + lua": nginx_pids}),
                "front door alone": (
                    f"{server.apps_url}/apps/{alone}/hello",
                    {"front door": front, "instant host": instant},
                ),
            }
            targets = await hello_targets(server, pg, peers, (hello, alone))
            picloud_parts = targets["PiCloud"][1]
            hello_points = await hello_rounds(targets, args)
    if "kv" in args.only:
        picloud_parts = picloud_parts or (await picloud_target(server, pg))[1]
        kv_points = await _kv(server, headers, picloud_parts, args)
    if "log" in args.only:
        print("   event log rounds...", flush=True)
        log_points = await eventlog_rounds(args.log_dsn, args.es_dsn, args)
    print(
        f"\nPiCloud against its peers, one run: {args.rounds} alternating rounds,"
        f" medians; wrk -t1, {args.seconds:g} s per point; code {revision()}"
    )
    print(f"load average at the start: {args.load_before}; at the end: {_load()}")
    met: dict[str, bool] = {}
    if hello_points is not None:
        met |= print_hello(hello_points)
    if kv_points is not None:
        met |= print_kv(kv_points)
    if log_points is not None:
        met |= print_eventlog(log_points)
    if hello_points is not None:
        print_bounds(hello_points)
    return met


async def _kv(
    server: Server,
    headers: dict[str, str],
    picloud_parts: dict[str, Pids],
    args: argparse.Namespace,
) -> Rounds:
    pg = picloud_parts["postgres"]
    hands = {
        name: await start_handwritten(args.dsn, loop)
        for name, loop in (
            ("hand-written, uvloop", "uvloop"),
            ("hand-written, asyncio", "asyncio"),
        )
    }
    script = args.home / "unique-keys.lua"
    await asyncio.to_thread(script.write_text, WRK_SCRIPT)
    try:
        targets = {"PiCloud": (await setup_route(server, headers), picloud_parts)}
        for name, (proc, url) in hands.items():
            targets[name] = (url, {"handler": _pid(proc), "postgres": pg})
        print("   kv.set rounds...", flush=True)
        return await kv_rounds(targets, script, args)
    finally:
        for proc, _ in hands.values():
            proc.terminate()
            await proc.wait()


def _pid(proc: asyncio.subprocess.Process) -> Pids:
    return lambda: [proc.pid]


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--log-seconds", type=float, default=2.0)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=("hello", "kv", "log"),
        default=["hello", "kv", "log"],
        help="measure only these parts (all three by default)",
    )
    args = parser.parse_args()
    ensure_tools()
    logging.basicConfig(level=logging.WARNING)
    args.load_before = _load()
    print(f"machine: {os.cpu_count()} cores, load average {args.load_before}")
    with embedded_postgres() as (dsn, embedded, home):
        args.dsn, args.home = dsn, home
        args.log_dsn = embedded.start("eventlog")
        args.es_dsn = embedded.start("eventsourcing")
        with local_ray():
            met = event_loop.run(run((dsn, home, postgres_pids(embedded.pgdata)), args))
    print("\ntargets:")
    for target, ok in met.items():
        print(f"  {'met    ' if ok else 'NOT met'}  {target}")


if __name__ == "__main__":
    main()
