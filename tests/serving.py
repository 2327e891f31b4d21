"""`picloud serve` and `picloud admin` as subprocesses, for tests of the whole."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import IO

import psutil


def serve(env: dict[str, str], output: IO[str] | None = None) -> subprocess.Popen[str]:
    """``picloud serve`` in a session of its own; its log goes to ``output``."""
    return subprocess.Popen(
        [sys.executable, "-m", "picloud", "serve"],
        env=env,
        stdout=output or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_healthy(
    port: int, process: subprocess.Popen[str], within: float = 180
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, "picloud serve exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    raise AssertionError("no /healthz")


def kill_tree(process: subprocess.Popen[str]) -> None:
    """SIGKILL the server and everything it started (Ray, Postgres), at once."""
    tree = [process.pid]
    with contextlib.suppress(psutil.NoSuchProcess):
        children = psutil.Process(process.pid).children(recursive=True)
        tree += [child.pid for child in children]
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def admin_cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "picloud", "admin", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()
