"""A Ray cluster of several nodes on this machine, and PiCloud processes on it.

Every node is a ``ray start`` with a temporary directory of its own, so that
stopping a node kills exactly its processes: those whose command line names
its directory, their descendants (the workers, which rename themselves), and
nothing else. ``ray stop`` is never used: it stops every Ray of the machine's
user, other test sessions' among them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from tests.helpers import free_port

RAY = str(Path(sys.executable).parent / "ray")


def ray_env(token: str) -> dict[str, str]:
    """Ray's part of the environment: a token of this test for the cluster
    (never ~/.ray's), no usage statistics."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_USAGE_STATS_ENABLED="0")
    return env


@dataclass
class RayNode:
    """One ``ray start`` of this machine."""

    temp_dir: Path
    resource: str

    def start(self, env: dict[str, str], head: str | None = None) -> None:
        """A head node if ``head`` is None, else a node joining it."""
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        where = ["--address", head] if head else ["--head", f"--port={free_port()}"]
        command = [
            RAY,
            "start",
            *where,
            f"--temp-dir={self.temp_dir}",
            "--num-cpus=1",
            f"--resources={json.dumps({self.resource: 1})}",
            f"--dashboard-agent-listen-port={free_port()}",
            "--include-log-monitor=false",
            "--disable-usage-stats",
        ]
        if head is None:
            command += [
                "--include-dashboard=false",
                f"--dashboard-port={free_port()}",
                "--no-monitor",
            ]
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)

    @property
    def address(self) -> str:
        """The GCS address a head wrote (the machine's address, not loopback)."""
        return (self.temp_dir / "ray_current_cluster").read_text().strip()

    def processes(self) -> list[psutil.Process]:
        found: dict[int, psutil.Process] = {}
        me = os.getpid()
        for p in psutil.process_iter(["cmdline"]):
            if p.pid != me and str(self.temp_dir) in " ".join(p.info["cmdline"] or []):
                found[p.pid] = p
                with contextlib.suppress(psutil.Error):
                    found.update({c.pid: c for c in p.children(recursive=True)})
        return list(found.values())

    def kill(self) -> None:
        """SIGKILL every process of this node at once (a machine that dies)."""
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                p.kill()


@dataclass
class PiCloud:
    """A ``picloud`` subprocess: its command, environment and log."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[str] | None = None
    _log: IO[str] | None = field(default=None, repr=False)

    def start(self) -> None:
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "picloud", *self.args],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    @property
    def port(self) -> int:
        return int(self.env["PICLOUD_HTTP_PORT"])

    @property
    def apps_port(self) -> int:
        return int(self.env["PICLOUD_APPS_PORT"])

    def kill(self) -> None:
        """SIGKILL the process (and anything in its session)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        if self._log is not None:
            self._log.close()
            self._log = None

    def output(self) -> str:
        if self._log is not None:
            self._log.flush()
        return self.log_path.read_text()


@dataclass
class Cluster:
    """Everything a test started: nodes and PiCloud processes, torn down together."""

    root: Path
    token: str
    nodes: list[RayNode] = field(default_factory=list)
    picloud: list[PiCloud] = field(default_factory=list)

    def node(self, name: str, head: str | None = None) -> RayNode:
        node = RayNode(self.root / name, f"picloud_test_{name}")
        self.nodes.append(node)
        node.start(ray_env(self.token), head)
        return node

    def run(self, name: str, args: list[str], env: dict[str, str]) -> PiCloud:
        process = PiCloud(args, {**env, **_ray_only(self.token)}, self.root / name)
        self.picloud.append(process)
        process.start()
        return process

    def teardown(self) -> None:
        for process in self.picloud:
            process.kill()
        for node in self.nodes:
            node.kill()
        deadline = time.monotonic() + 10
        while any(n.processes() for n in self.nodes) and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(self.root, ignore_errors=True)


def _ray_only(token: str) -> dict[str, str]:
    return {k: v for k, v in ray_env(token).items() if k.startswith("RAY_")}
