"""The embedded Postgres (``pgserver``) used when no database URL is configured."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

from picloud.errors import StoreUnavailable

__all__ = ["DATABASE_NAME", "EmbeddedPostgres"]

log = logging.getLogger(__name__)

DATABASE_NAME = "picloud"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class EmbeddedPostgres:
    """A Postgres server whose data lives under ``<data_dir>/postgres``.

    ``start`` is idempotent across processes: pgserver reuses a server already
    running on the same data directory. The server is stopped when the last
    process that started it exits (``cleanup_mode="stop"``).
    """

    def __init__(self, data_dir: Path, *, cleanup_mode: str | None = "stop") -> None:
        self.pgdata = data_dir / "postgres"
        self._cleanup_mode = cleanup_mode
        self._server: object | None = None

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

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()  # type: ignore[attr-defined]  # pgserver.PostgresServer
