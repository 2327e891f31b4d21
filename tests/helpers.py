"""Helpers shared by the test modules of this folder."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def dsn_for(base: str, database: str) -> str:
    """The same server as ``base``, another database."""
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{database}"))


def public_temp_dir(prefix: str) -> Path:
    """A fresh directory others may traverse. pytest's basetemp is private to
    root (0700, reset by every pytest session), and when run as root pgserver
    starts Postgres as another user, which must reach its data directory."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)
    return home


async def create_database(pg_server: str, template: str = "template0") -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    finally:
        await admin.close()
    return dsn_for(pg_server, name)


async def drop_database(pg_server: str, dsn: str) -> None:
    name = urlsplit(dsn).path.lstrip("/")
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def picloud_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``picloud`` subprocess: this data dir, a free port
    for the apps listener (unless given), no other PICLOUD_ setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICLOUD_")}
    env.update(
        {
            "PICLOUD_DATA_DIR": str(data_dir),
            "PICLOUD_APPS_PORT": str(free_port()),
            **extra,
        }
    )
    return env


async def run_picloud(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """``picloud ARGS`` as a subprocess: exit code, stdout, stderr. Awaited,
    so a server in the test's own event loop serves it meanwhile."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "picloud",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
