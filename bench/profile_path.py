"""Where the CPU of one hello request goes, process by process.

Starts an embedded Postgres, a local Ray and a PiCloud server (the bench's
settings), makes an app with ``GET /hello`` → ``return "hello"``, and loads
it with wrk at ``--clients`` (64) for ``--seconds`` while perf samples the
machine and py-spy the front door and the app's host. Prints, for each
process, its CPU time per request (psutil) and that time split two ways,
as µs per request: over shared objects and symbols (``perf record -a``:
libpython, the kernel, uvloop, lupa, asyncpg…), and over PiCloud's own
functions, inclusive of what they call (py-spy).

Usage: python bench/profile_path.py [--seconds 10] [--clients 64] [--top 25]
           [--route hello|kv] [--out DIR]
``--route kv``: bench_kv's durable kv.set per request (unique keys) instead.
Needs wrk, perf (Debian: linux-perf) and py-spy (``pip install py-spy``);
run as root (both read other processes).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import psutil
from bench_ingress import (
    admin_key,
    cpu_seconds,
    make_apps,
    postgres_pids,
    revision,
    wrk,
)
from bench_kv import WRK_SCRIPT, setup_route
from harness import embedded_postgres, local_ray

from picloud import event_loop
from picloud.config import Settings
from picloud.server import Server


def parse_raw(path: Path) -> tuple[int, collections.Counter[str]]:
    """py-spy's raw (collapsed) stacks: the samples, and per function the
    samples in which it is on the stack (inclusive time; native code shows as
    the Python frame that called it, so this says which Python code costs)."""
    total, inclusive = 0, collections.Counter[str]()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not (stack and count.isdigit()):
            continue
        total += int(count)
        for frame in set(stack.split(";")):
            inclusive[frame] += int(count)
    return total, inclusive


def perf_split(data: Path, pid: int) -> collections.Counter[str]:
    """Samples of ``pid``'s threads per shared object and symbol (perf's
    ``pid`` is a thread's id)."""
    tids = {t.id for t in psutil.Process(pid).threads()}
    out = subprocess.run(
        ["perf", "report", "-i", str(data), "--sort", "pid,dso,sym", "--stdio",
         "--percentage", "relative", "-F", "sample,pid,dso,sym"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    samples: collections.Counter[str] = collections.Counter()
    for line in out.splitlines():
        found = re.match(r"\s*(\d+)\s+(\d+):(\S+)\s+(\S+)\s+\[.\]\s+(.*)", line)
        if found and int(found.group(2)) in tids:
            thread, dso, symbol = found.group(3), found.group(4), found.group(5)
            key = f"{thread}  {dso}  {symbol.strip()[:70]}"
            samples[key] += int(found.group(1))
    return samples


def report(name: str, pid: int, us: float, args: argparse.Namespace) -> None:
    print(f"\n{name}: {us:,.0f} µs of CPU per request")
    samples = perf_split(args.out / "perf.data", pid)
    total = sum(samples.values()) or 1
    for i, what in ((0, "thread"), (1, "shared object")):
        split: collections.Counter[str] = collections.Counter()
        for key, n in samples.items():
            split[key.split("  ")[i]] += n
        print(f"  by {what} (perf, {total:,} samples):")
        for part, n in split.most_common(8):
            print(f"  {us * n / total:>7.1f} µs  {100 * n / total:4.1f}%  {part}")
    print("  hottest symbols:")
    for key, n in samples.most_common(args.top // 2):
        symbol = key.split("  ", 1)[1]
        print(f"  {us * n / total:>7.1f} µs  {100 * n / total:4.1f}%  {symbol}")
    spied, inclusive = parse_raw(args.out / f"{name.replace(' ', '-')}.txt")
    print(f"  PiCloud's code, inclusive (py-spy, {spied:,} samples):")
    ours = [(f, n) for f, n in inclusive.most_common() if "picloud/" in f]
    for frame, n in ours[: args.top]:
        print(f"  {us * n / spied:>7.1f} µs  {100 * n / spied:4.1f}%  {frame[:100]}")


async def target(
    server: Server, home: Path, route: str
) -> tuple[str, tuple[Path, str] | None, int]:
    """The URL to load, wrk's script (and its argument) if any, and the pid
    of the host of the app behind it."""
    assert server.services is not None
    headers = {"Authorization": f"Bearer {await admin_key(server)}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        [(slug, app_id)] = (await make_apps(session, server.url, 1)).items()
    url, script = f"{server.apps_url}/apps/{slug}/hello", None
    if route == "kv":
        url = await setup_route(server, headers)
        record = await server.services.store.app("kvbench")
        assert record is not None
        app_id = record.id
        script = (home / "unique-keys.lua", uuid.uuid4().hex[:12])
        await asyncio.to_thread(script[0].write_text, WRK_SCRIPT)
    await wrk(url, 16, 2, *(script or ()))  # warm-up
    return url, script, await server.services.hosts.link_for(app_id).pid()


async def samplers(
    pids: dict[str, int], args: argparse.Namespace
) -> list[asyncio.subprocess.Process]:
    """perf over the machine, py-spy over each of ``pids``, for the load."""
    args.out.mkdir(parents=True, exist_ok=True)
    quiet = asyncio.subprocess.DEVNULL
    perf = await asyncio.create_subprocess_exec(
        "perf", "record", "-a", "-e", "cpu-clock", "-F", "999",
        "-o", str(args.out / "perf.data"), "--", "sleep", str(args.seconds - 1),
        stdout=quiet, stderr=quiet,
    )  # fmt: skip
    spies = [
        await asyncio.create_subprocess_exec(
            "py-spy", "record", "--nonblocking", "-r", "200",
            "-d", str(max(1, round(args.seconds) - 1)), "-f", "raw",
            "-o", str(args.out / f"{name.replace(' ', '-')}.txt"),
            "--pid", str(pid), stdout=quiet, stderr=quiet,
        )
        for name, pid in pids.items()
    ]  # fmt: skip
    return [perf, *spies]


async def run(dsn: str, pg_data: Path, home: Path, args: argparse.Namespace) -> None:
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
    try:
        url, script, host_pid = await target(server, home, args.route)
        pids = {"front door": os.getpid(), "host": host_pid}
        sampling = await samplers(pids, args)
        pg = postgres_pids(pg_data)
        before = {n: cpu_seconds([p]) for n, p in pids.items()}
        before["postgres"] = cpu_seconds(pg())
        point = await wrk(url, args.clients, args.seconds, *(script or ()))
        requests = point.rps * max(1, round(args.seconds))
        used = {n: cpu_seconds([p]) - before[n] for n, p in pids.items()}
        used["postgres"] = cpu_seconds(pg()) - before["postgres"]
        for process in sampling:
            await process.wait()
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"{args.route} at {args.clients} clients for {args.seconds:g} s:"
            f" {point.rps:,.0f} req/s, p50 {point.p50_ms:.2f} ms,"
            f" p99 {point.p99_ms:.2f} ms (under the profilers);"
            f" code {revision()}; load average {load}"
        )
        per_request = {n: s / requests * 1e6 for n, s in used.items()}
        print("CPU per request: " + ", ".join(
            f"{n} {us:,.0f} µs" for n, us in per_request.items()
        ))  # fmt: skip
        for name, pid in pids.items():
            report(name, pid, per_request[name], args)
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--route", choices=["hello", "kv"], default="hello")
    parser.add_argument("--out", type=Path, default=Path("picloud-profile"))
    args = parser.parse_args()
    for tool in ("wrk", "py-spy", "perf"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found")
    with embedded_postgres() as (dsn, embedded, home), local_ray():
        event_loop.run(run(dsn, embedded.pgdata, home, args))


if __name__ == "__main__":
    main()
