"""How long ``picloud serve`` takes to answer /healthz, and what it holds idle.

Starts ``picloud serve`` as a newcomer would (its own data directory, the
embedded Postgres, a local Ray): once from nothing, then ``--warm`` more
times on the same data directory; prints each time to a healthy /healthz,
their median, and the idle memory (USS, and RSS) of every process it runs —
its own tree and the embedded Postgres — after ``--idle`` seconds.

With each time it prints the CPU time all those processes had used by then
(user + system, finished children included): on a shared machine the wall
time follows the others' load, the CPU time much less so.

    python bench/bench_startup.py [--warm 3] [--idle 10]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(data: Path) -> tuple[subprocess.Popen[bytes], int, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICLOUD_")}
    port = free_port()
    env.update(
        PICLOUD_DATA_DIR=str(data),
        PICLOUD_HTTP_PORT=str(port),
        PICLOUD_APPS_PORT=str(free_port()),
        PICLOUD_LOG_LEVEL="WARNING",
    )
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "picloud", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    while True:
        if process.poll() is not None:
            raise RuntimeError("picloud serve exited")
        try:
            with urllib.request.urlopen(  # loopback only
                f"http://127.0.0.1:{port}/healthz", timeout=2
            ):
                return process, port, time.perf_counter() - started
        except OSError:
            time.sleep(0.05)


def processes(process: subprocess.Popen[bytes], data: Path) -> list[psutil.Process]:
    tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
    postgres = [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(data) in " ".join(p.info["cmdline"] or []) and p not in tree
    ]
    for p in list(postgres):
        postgres += [c for c in p.children(recursive=True) if c not in postgres]
    return tree + postgres


def memory(procs: list[psutil.Process]) -> tuple[float, float]:
    uss = rss = 0
    for p in procs:
        try:
            info = p.memory_full_info()
        except psutil.Error:
            continue
        uss, rss = uss + info.uss, rss + info.rss
    return uss / 2**20, rss / 2**20


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def cpu_seconds(process: subprocess.Popen[bytes], data: Path) -> float:
    total = 0.0
    for p in processes(process, data):
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=3)
    parser.add_argument("--idle", type=float, default=10.0)
    args = parser.parse_args()
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        times, cpus = [], []
        for n in range(args.warm + 1):
            process, _, seconds = start(data)
            cpu = cpu_seconds(process, data)
            times.append(seconds)
            cpus.append(cpu)
            kind = "first" if n == 0 else "warm"
            print(f"{kind} start: {seconds:5.2f} s (CPU {cpu:5.2f} s)")
            if n == args.warm:
                time.sleep(args.idle)
                procs = processes(process, data)
                uss, rss = memory(procs)
                print(
                    f"idle after {args.idle:g} s: {len(procs)} processes,"
                    f" USS {uss:.0f} MB, RSS {rss:.0f} MB"
                )
                for p in sorted(procs, key=lambda p: -memory([p])[0])[:12]:
                    name = " ".join(p.cmdline())[:70] if p.is_running() else "?"
                    print(f"  {memory([p])[0]:6.1f} MB  {name}")
            stop(process)
        if args.warm:
            print(
                f"median warm start: {statistics.median(times[1:]):.2f} s"
                f" (CPU {statistics.median(cpus[1:]):.2f} s)"
            )


if __name__ == "__main__":
    main()
