"""Scale on one machine: 10,000 registered apps, 1,000 active, memory, wake-ups.

Starts ``picloud serve`` as a newcomer would (its own data directory, the
embedded Postgres, the local Ray), then:

1. registers ``--apps`` apps (10,000) by writing the ``system`` stream the
   way ``picloud admin`` does (a ControlPlane of this process on the same
   database; the server's routing follows the log);
2. gives ``--active`` of them (1,000) a script and a route through the admin
   API, and calls every route once: they are all active;
3. waits until every host has passivated them (``PICLOUD_APP_IDLE_TIMEOUT_S``
   is set short), calls them all again — each request wakes a passivated app
   (snapshot + log tail, Lua compile) — and waits for passivation again,
   ``--cycles`` times.

After each step it prints the RSS, USS and PSS of every process (the serve
process, which runs the control plane too, Ray's, the app hosts, Postgres)
and the total: memory must stay within the machine, and idle memory must be
flat from one passivation to the next. It prints the time of a request to a
passivated app next to one to an active app.

    python bench/bench_scale.py [--apps 10000] [--active 1000] [--idle 20]
                                [--cycles 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil
from harness import pct

from picloud import event_loop
from picloud.actors.control_plane import ControlPlane
from picloud.config import Settings
from picloud.domain.access import ALL_SCOPES
from picloud.domain.credentials import hash_password, new_api_key
from picloud.domain.identity import CreateApiKey, CreateUser
from picloud.domain.system import CreateApp
from picloud.events import EventMeta
from picloud.store import Database

HELLO = 'return "hello"'
MIB = 2**20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(data: Path, idle_s: int) -> tuple[subprocess.Popen[bytes], int, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICLOUD_")}
    port, apps_port = free_port(), free_port()
    env.update(
        PICLOUD_DATA_DIR=str(data),
        PICLOUD_HTTP_PORT=str(port),
        PICLOUD_APPS_PORT=str(apps_port),
        PICLOUD_LOG_LEVEL="WARNING",
        PICLOUD_APP_IDLE_TIMEOUT_S=str(idle_s),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "picloud", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("picloud serve exited")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process, port, apps_port
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("picloud serve did not become healthy")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def dsn_of(data: Path) -> str:
    """The embedded server's socket, from its postmaster.pid."""
    lines = (data / "postgres" / "postmaster.pid").read_text().splitlines()
    return f"postgresql://postgres:@/picloud?host={lines[4]}"


# -- memory ------------------------------------------------------------------------


def tree(process: subprocess.Popen[bytes], data: Path) -> list[psutil.Process]:
    """The serve process, what it started, and the embedded Postgres."""
    root = psutil.Process(process.pid)
    procs = [root, *root.children(recursive=True)]
    for p in psutil.process_iter(["cmdline"]):
        if str(data) in " ".join(p.info["cmdline"] or []) and p not in procs:
            procs += [p, *p.children(recursive=True)]
    return list({p.pid: p for p in procs}.values())


def label(p: psutil.Process) -> str:
    name = " ".join(p.cmdline())
    for short in ("postgres", "gcs_server", "raylet"):
        if short in name.split(" ")[0]:
            return short
    if name.startswith("ray::"):
        return name.split()[0]
    if "picloud serve" in name:
        return "picloud serve (front door)"
    return name[:40]


def memory(process: subprocess.Popen[bytes], data: Path, title: str) -> float:
    """Print RSS, USS and PSS per kind of process; the total PSS in MB.

    RSS counts every page a process maps, so summed it counts Postgres's
    shared buffers once per backend; PSS shares each page among the
    processes that map it, so its sum is what the machine gives them.
    """
    rows: dict[str, list[float]] = {}
    for p in tree(process, data):
        try:
            info = p.memory_full_info()
            kind = label(p)
        except psutil.Error:
            continue
        row = rows.setdefault(kind, [0.0, 0.0, 0.0, 0.0])
        row[0] += info.rss / MIB
        row[1] += info.uss / MIB
        row[2] += info.pss / MIB
        row[3] += 1
    rss, uss, pss = (sum(r[i] for r in rows.values()) for i in range(3))
    print(
        f"\n{title}: PSS {pss:.0f} MB in all (USS {uss:.0f} MB; RSS summed"
        f" {rss:.0f} MB, shared pages counted once per process)"
    )
    for kind, (r, u, ps, n) in sorted(rows.items(), key=lambda kv: -kv[1][2]):
        each = f" ({n:.0f} processes)" if n > 1 else ""
        print(f"  RSS {r:7.1f}  USS {u:7.1f}  PSS {ps:7.1f} MB  {kind}{each}")
    return pss


# -- the system stream, as `picloud admin` writes it --------------------------------


async def register(dsn: str, count: int) -> tuple[list[tuple[str, str]], str]:
    """``count`` apps and an admin key; (slug, id) of each app, and the key."""
    settings = Settings(db_pool_min=1, db_pool_max=2)
    db = await Database.open(dsn, settings)
    try:
        plane = ControlPlane(db.log)
        await plane.catch_up()
        meta = EventMeta(actor="bench")
        password = await asyncio.to_thread(hash_password, "a bench password")
        [user] = await plane.execute(
            CreateUser(username="bench", password_hash=password, admin=True), meta
        )
        made = new_api_key()
        await plane.execute(
            CreateApiKey(
                user=user.event.user_id,  # type: ignore[attr-defined]
                name="bench",
                prefix=made.prefix,
                secret_hash=made.hash,
                scopes=tuple(sorted(ALL_SCOPES)),
            ),
            meta,
        )
        apps = []
        started = time.monotonic()
        for n in range(count):
            slug = f"s{n:05d}"
            [created] = await plane.execute(CreateApp(slug=slug, name=slug), meta)
            apps.append((slug, created.event.app_id))
            if (n + 1) % 2000 == 0:
                rate = (n + 1) / (time.monotonic() - started)
                print(f"  {n + 1} apps registered ({rate:.0f}/s)")
        return apps, made.secret
    finally:
        await db.close()


# -- HTTP ---------------------------------------------------------------------------


async def bounded(
    work: list[Callable[[], Awaitable[float]]], limit: int
) -> list[float]:
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[float]]) -> float:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in work)))


async def give_route(
    session: aiohttp.ClientSession, base: str, key: str, slug: str
) -> float:
    auth = {"Authorization": f"Bearer {key}"}
    url = f"{base}/api/v1/admin/apps/{slug}/scripts"
    body = {"name": "h", "source": HELLO}
    async with session.post(url, json=body, headers=auth) as r:
        assert r.status == 201, await r.text()
        script = await r.json()
    url = f"{base}/api/v1/admin/scripts/{script['id']}/routes"
    body = {"method": "GET", "path": "/"}
    async with session.post(url, json=body, headers=auth) as r:
        assert r.status == 201, await r.text()
    return 0.0


async def call(session: aiohttp.ClientSession, apps_base: str, slug: str) -> float:
    started = time.perf_counter()
    async with session.get(f"{apps_base}/apps/{slug}/") as r:
        body = await r.read()
        assert r.status == 200, body
    return time.perf_counter() - started


async def active_apps(session: aiohttp.ClientSession, base: str, key: str) -> int:
    auth = {"Authorization": f"Bearer {key}"}
    async with session.get(f"{base}/api/v1/admin/hosts", headers=auth) as r:
        hosts = await r.json()
    return sum(h["active_apps"] or 0 for h in hosts["items"])


async def until_passivated(
    session: aiohttp.ClientSession, base: str, key: str, within: float
) -> float:
    started = time.monotonic()
    while await active_apps(session, base, key) > 0:
        if time.monotonic() - started > within:
            raise RuntimeError("the apps were not passivated")
        await asyncio.sleep(1.0)
    return time.monotonic() - started


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def latencies(name: str, times: list[float]) -> None:
    print(
        f"  {name}: p50 {ms(statistics.median(times))}, p90 {ms(pct(times, 0.9))},"
        f" p99 {ms(pct(times, 0.99))}, max {ms(max(times))} ({len(times)} requests)"
    )


# -- the run ------------------------------------------------------------------------


async def run(args: argparse.Namespace, data: Path) -> None:
    process, port, apps_port = serve(data, args.idle)
    base, apps_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{apps_port}"
    try:
        memory(process, data, "idle after start")
        started = time.monotonic()
        apps, key = await register(dsn_of(data), args.apps)
        print(f"{len(apps)} apps registered in {time.monotonic() - started:.0f} s")
        await asyncio.sleep(2.0)  # the routing table follows the log
        memory(process, data, f"{len(apps)} apps registered, none active")
        active = [slug for slug, _ in apps[: args.active]]
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            state = Run(args, process, data, base, apps_base, key)
            await cycle(session, state, active)
    finally:
        stop(process)


@dataclass(frozen=True)
class Run:
    """What every step of the run needs."""

    args: argparse.Namespace
    process: subprocess.Popen[bytes]
    data: Path
    base: str
    apps_base: str
    key: str

    def memory(self, title: str) -> float:
        return memory(self.process, self.data, title)


async def cycle(session: aiohttp.ClientSession, run: Run, active: list[str]) -> None:
    args, base, apps_base, key = run.args, run.base, run.apps_base, run.key
    started = time.monotonic()
    await bounded([lambda s=s: give_route(session, base, key, s) for s in active], 8)
    print(f"\n{len(active)} routes made in {time.monotonic() - started:.0f} s")
    first = await bounded([lambda s=s: call(session, apps_base, s) for s in active], 16)
    latencies("first call of each route (its app active)", first)
    hot = await bounded([lambda: call(session, apps_base, active[0])] * 500, 1)
    latencies("a request to an active app", hot)
    peak = run.memory(f"{await active_apps(session, base, key)} apps active")
    idle = []
    for n in range(1, args.cycles + 1):
        waited = await until_passivated(session, base, key, args.idle * 4 + 60)
        idle.append(run.memory(f"all passivated ({waited:.0f} s), cycle {n}"))
        if n == args.cycles:
            break
        woken = await bounded(
            [lambda s=s: call(session, apps_base, s) for s in active], 1
        )
        latencies("a request to a passivated app (wakes it)", woken)
        run.memory(f"{await active_apps(session, base, key)} apps woken")
    print(
        f"\npeak PSS {peak:.0f} MB with {len(active)} apps active; idle PSS after"
        f" each passivation: {', '.join(f'{m:.0f}' for m in idle)} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--active", type=int, default=1_000)
    parser.add_argument("--idle", type=int, default=20, help="idle timeout, s")
    parser.add_argument("--cycles", type=int, default=3, help="passivations")
    args = parser.parse_args()
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    gib = psutil.virtual_memory().total / 2**30
    print(f"machine: {os.cpu_count()} CPUs, {gib:.1f} GiB")
    with tempfile.TemporaryDirectory() as tmp:
        event_loop.run(run(args, Path(tmp) / "data"))
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
