"""What every bench needs: a throwaway embedded Postgres, a local Ray, an
AppActor of a new app, a peer server in a process of its own, and a percentile.

The benches run as scripts (``python bench/bench_x.py``), so this sibling
module is importable by its bare name.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import checkout  # first: the picloud of this checkout
import ray

from picloud.actors.app_actor import AppActor
from picloud.actors.control_plane import ControlPlane
from picloud.actors.invoker import Invoker
from picloud.actors.protocol import Done
from picloud.config import Settings
from picloud.domain.system import CreateApp
from picloud.events import EventMeta
from picloud.scripting import AppInfo
from picloud.store import AppStore, EmbeddedPostgres, EventLog


@contextmanager
def embedded_postgres() -> Iterator[tuple[str, EmbeddedPostgres, Path]]:
    """A fresh Postgres in a temporary directory, deleted afterwards.

    Yields (dsn, server, directory); a bench may keep its own files in the
    directory too.
    """
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        home.chmod(0o755)  # the server may run as another user (pgserver's default)
        embedded = EmbeddedPostgres(home, cleanup_mode="delete")
        dsn = embedded.start("bench")
        try:
            yield dsn, embedded, home
        finally:
            embedded.stop()


@contextmanager
def local_ray() -> Iterator[None]:
    """A quiet local Ray on the machine's two cores, shut down afterwards."""
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,  # hosts a bench kills would fill the output
    )
    try:
        yield
    finally:
        ray.shutdown()


async def bench_actor(log: EventLog, settings: Settings) -> AppActor:
    """The active AppActor of a new app "bench", in this process (no Ray)."""
    plane = ControlPlane(log)
    await plane.catch_up()
    [created] = await plane.execute(CreateApp(slug="bench", name="bench"), EventMeta())
    app = AppInfo(id=created.event.app_id, slug="bench", name="bench")  # type: ignore[attr-defined]
    invoker = Invoker(app, settings)
    actor = AppActor(
        app, store=AppStore(log, app.id), settings=settings, invoker=invoker
    )
    await actor.activate()
    return actor


async def ask(actor: AppActor, command: Any) -> Any:
    """The result of a command the bench expects to succeed."""
    reply = await actor.submit(command, 60)
    assert isinstance(reply, Done), reply
    return reply.result


async def spawn_listener(
    program: str, *argv: str, seconds: float = 60.0
) -> tuple[asyncio.subprocess.Process, int]:
    """Run ``program`` (Python source, with ``argv``) in a process of its own;
    it prints the loopback port it listens on, which is returned with it."""
    path = os.pathsep.join(
        p for p in (checkout.ROOT, os.environ.get("PYTHONPATH")) if p
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        program,
        *argv,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": path},  # this checkout's picloud
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), seconds)
    if not line.strip():
        proc.kill()
        await proc.wait()
        raise RuntimeError("the peer server exited before it listened")
    return proc, int(line)


def pct(values: list[float], q: float) -> float:
    """The q-quantile of values by nearest rank (q in [0, 1])."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
