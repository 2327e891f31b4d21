"""The embedded Postgres (``pgserver``) used when no database URL is configured,
and its supervision: the process that started it restarts it when it dies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import subprocess
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from picloud.errors import StoreUnavailable
from picloud.store._backoff import Backoff

if TYPE_CHECKING:
    from pgserver.utils import PostmasterInfo

__all__ = ["DATABASE_NAME", "EmbeddedPostgres"]

log = logging.getLogger(__name__)

DATABASE_NAME = "picloud"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_FIRST_RESTART_S = 0.2
_MOST_RESTART_S = 5.0
_STABLE_S = 60.0  # up this long after a restart: the next death starts a new back-off
_GONE_WITHIN_S = 10.0
_START_WITHIN_S = 60.0


class EmbeddedPostgres:
    """A Postgres server whose data lives under ``<data_dir>/postgres``.

    ``start`` is idempotent across processes: pgserver reuses a server already
    running on the same data directory. The server is stopped when the last
    process that started it exits (``cleanup_mode="stop"``), or by ``stop``.
    While :meth:`supervise` runs, a server that dies is started again on the
    same socket, so the DSN ``start`` returned stays valid.
    """

    def __init__(self, data_dir: Path, *, cleanup_mode: str | None = "stop") -> None:
        self.pgdata = data_dir / "postgres"
        self._cleanup_mode = cleanup_mode
        self._server: Any = None  # pgserver.PostgresServer
        # Held by a restart (on a worker thread) and by stop: stop never lands
        # in the middle of a restart, and no restart follows a stop.
        self._guard = threading.Lock()
        self._stopped = False
        self.restarts = 0

    def start(self, database: str = DATABASE_NAME) -> str:
        """Start (or join) the server, create ``database`` if absent; return its DSN."""
        with warnings.catch_warnings():
            # platformdirs warns about XDG_RUNTIME_DIR on headless machines.
            warnings.simplefilter("ignore")
            import pgserver  # noqa: PLC0415  # heavy import, only when embedded

            self.pgdata.mkdir(parents=True, exist_ok=True)
            try:
                server = pgserver.get_server(  # type: ignore[attr-defined]  # not in its __all__
                    self.pgdata, cleanup_mode=self._cleanup_mode
                )
            except Exception as e:  # pgserver raises bare exceptions on start failure
                raise StoreUnavailable(f"embedded Postgres did not start: {e}") from e
        self._server = server
        if not _IDENTIFIER.fullmatch(database):
            raise StoreUnavailable(f"not a database name: {database!r}")
        exists = server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{database}';"  # noqa: S608  # checked identifier
        )
        if "(1 row)" not in exists:
            server.psql(f'CREATE DATABASE "{database}";')
        log.info("embedded Postgres at %s", self.pgdata)
        return str(server.get_uri(database))

    @property
    def pid(self) -> int | None:
        """The postmaster's process id (None before ``start``)."""
        server = self._server
        return None if server is None else int(server.get_pid())

    def stop(self) -> None:
        with self._guard:
            self._stopped = True
            server, self._server = self._server, None
        if server is None:
            return
        if not _alive(server.get_postmaster_info()):
            # Dead and not restarted: nothing to stop, and pgserver would try
            # to kill a process that may be gone by then.
            server._postmaster_info = None
        server.cleanup()

    async def supervise(self, *, check_every_s: float = 0.25) -> None:
        """Until cancelled: start the server again whenever it stops running.

        A death is seen within ``check_every_s``. The restart waits 0.2 s,
        doubling up to 5 s while restarts fail or the server keeps dying; each
        death and restart is logged with its cause. Cancel it before
        :meth:`stop` (a restart under way finishes first; stop then stops it).
        """
        backoff = Backoff(_FIRST_RESTART_S, _MOST_RESTART_S)
        up_since = time.monotonic()
        while True:
            await asyncio.sleep(check_every_s)
            try:
                cause = self._down_cause()
                if cause is None:
                    if time.monotonic() - up_since > _STABLE_S:
                        backoff.reset()
                    continue
                await self._restart(cause, backoff)
                up_since = time.monotonic()
            except Exception:  # a task root: supervision must outlive a bad turn
                log.exception("supervising the embedded Postgres failed; going on")

    def _down_cause(self) -> str | None:
        """Why the server is not running, or None if it is."""
        server = self._server
        if server is None:
            return None
        info: PostmasterInfo = server.get_postmaster_info()
        if _alive(info):
            return None
        if (self.pgdata / "postmaster.pid").exists():
            how = "died and left postmaster.pid behind (killed or crashed)"
        else:
            how = "shut down (postmaster.pid removed: stopped, e.g. by pg_ctl stop)"
        return f"the postmaster (pid {info.pid}) {how}"

    async def _restart(self, cause: str, backoff: Backoff) -> None:
        while True:
            delay = backoff.next()
            log.error("embedded Postgres: %s; restarting it in %.1fs", cause, delay)
            await asyncio.sleep(delay)
            try:
                pid = await asyncio.to_thread(self._restart_now)
            except StoreUnavailable as e:
                cause = f"the last restart failed: {e.message}"
                continue
            if pid is not None:
                self.restarts += 1
                log.warning("embedded Postgres is running again (pid %d)", pid)
            return

    def _restart_now(self) -> int | None:
        """Start the server again (blocking); its pid, or None after a stop."""
        with self._guard:
            server = self._server
            if self._stopped or server is None:
                return None
            from pgserver.utils import PostmasterInfo  # noqa: PLC0415  # see start

            old: PostmasterInfo = server.get_postmaster_info()
            # Postgres will not start while the PID in postmaster.pid exists,
            # and a killed postmaster stays a zombie until its parent reaps it.
            _wait_gone(old)
            with server._lock:  # pgserver's lock across processes sharing pgdata
                info = PostmasterInfo.read_from_pgdata(self.pgdata)
                if info is None or not _alive(info):
                    _pg_ctl_start(server, old)  # another process may have done it
                    info = PostmasterInfo.read_from_pgdata(self.pgdata)
                if info is None or not _alive(info):
                    raise StoreUnavailable("the postmaster exited after starting")
                server._postmaster_info = info  # the one pgserver's cleanup stops
            return int(info.pid)


def _alive(info: PostmasterInfo) -> bool:
    import psutil  # noqa: PLC0415  # pgserver's dependency, loaded with it

    process: Any = info.process  # psutil.Process (pgserver types it None)
    try:
        return bool(
            process is not None
            and process.is_running()
            and process.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.Error:
        return False


def _wait_gone(info: PostmasterInfo) -> None:
    import psutil  # noqa: PLC0415  # see _alive

    process: Any = info.process  # psutil.Process (pgserver types it None)
    if process is None:
        return
    with contextlib.suppress(psutil.Error, ChildProcessError):
        if process.ppid() == os.getpid():  # ours to reap (we are its init)
            os.waitpid(process.pid, os.WNOHANG)
    with contextlib.suppress(psutil.Error):
        process.wait(timeout=_GONE_WITHIN_S)


def _pg_ctl_start(server: Any, old: Any) -> None:
    """``pg_ctl start`` as pgserver runs it, on the socket (or port) of before
    (``old``: its PostmasterInfo, whose optional fields pgserver types as set)."""
    from pgserver._commands import POSTGRES_BIN_PATH  # noqa: PLC0415  # see start

    if old.socket_dir is not None:
        where = ["-o", '-h ""', "-o", f"-k {old.socket_dir}"]
    else:
        where = ["-o", f'-h "{old.hostname}"', "-o", f"-p {old.port}"]
    command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(server.pgdata), "-w"]
    command += [*where, "-l", str(server.log), "start"]
    try:
        # No pipes: the server inherits them and pg_ctl would wait on them.
        done = subprocess.run(  # noqa: S603  # our own binary and arguments
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=server.system_user,
            timeout=_START_WITHIN_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise StoreUnavailable(f"pg_ctl start failed: {e}") from e
    if done.returncode != 0:
        raise StoreUnavailable(f"pg_ctl start failed: {_last_line(server.log)}")


def _last_line(path: Path) -> str:
    """The server log's last line: why the start failed, in Postgres' words."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 2048))
            lines = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return "no server log"
    return lines[-1] if lines else "empty server log"
