"""Numbered SQL migrations, applied in order, each once, under an advisory lock.

Guarantees:
- Files are ``NNNN_name.sql``; they are applied in number order, each in its
  own transaction together with its row in ``schema_migrations``.
- Two processes migrating at once are safe: the second waits on a
  session-level advisory lock and then finds nothing left to do.
- An applied migration whose file changed (checksum), or that this version of
  PiCloud does not know, is a :class:`MigrationError`; nothing is applied then.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import asyncpg

from picloud.config import Settings
from picloud.errors import MigrationError, StoreUnavailable
from picloud.store._errors import translate_errors
from picloud.store._pool import connect
from picloud.store.commit_signals import CHANNEL

__all__ = [
    "Migration",
    "MigrationState",
    "apply_migrations",
    "default_migrations_dir",
    "load_migrations",
    "migrate",
    "migration_status",
    "notify_readers",
]

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every PiCloud process.
_LOCK_KEY = 0x5069436C6F7564  # "PiCloud"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def default_migrations_dir() -> Path:
    """The wheel ships them as ``picloud/_migrations``; a checkout as ``migrations``."""
    packaged = resources.files("picloud") / "_migrations"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "migrations"


def load_migrations(directory: Path) -> list[Migration]:
    """Read and order the migration files; a misnamed or duplicate file is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(
                f"{path.name}: migration files are named NNNN_name.sql"
            )
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations numbered {version:04d}")
        found[version] = Migration(version, match.group(2), path.read_text())
    return [found[v] for v in sorted(found)]


async def apply_migrations(
    conn: asyncpg.Connection, directory: Path | None = None
) -> list[int]:
    """Apply the pending migrations on ``conn``; return the versions applied."""
    migrations = load_migrations(directory or default_migrations_dir())
    with translate_errors("migrate"):
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(_LEDGER)
            applied = {
                row["version"]: row["checksum"]
                for row in await conn.fetch(
                    "SELECT version, checksum FROM schema_migrations"
                )
            }
            _check_history(migrations, applied)
            done = []
            for migration in migrations:
                if migration.version not in applied:
                    await _apply(conn, migration)
                    done.append(migration.version)
            return done
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


def _check_history(migrations: list[Migration], applied: dict[int, str]) -> None:
    known = {m.version: m for m in migrations}
    for version, checksum in sorted(applied.items()):
        migration = known.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {version:04d}, which this PiCloud "
                "does not know: it was migrated by a newer version"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {version:04d}_{migration.name} changed after it was "
                "applied; applied migrations are append-only, add a new one instead"
            )


async def _apply(conn: asyncpg.Connection, migration: Migration) -> None:
    log.info("applying migration %04d_%s", migration.version, migration.name)
    async with conn.transaction():
        await conn.execute(migration.sql)
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum)"
            " VALUES ($1, $2, $3)",
            migration.version,
            migration.name,
            migration.checksum,
        )


async def migrate(dsn: str, settings: Settings) -> list[int]:
    """Connect to ``dsn``, apply the pending migrations, return their versions."""
    conn = await connect(dsn, settings)
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()


async def notify_readers(dsn: str, settings: Settings) -> None:
    """Wake every server's log readers now rather than at their next poll
    (after a write by another process, e.g. the CLI); best effort."""
    with contextlib.suppress(StoreUnavailable, asyncpg.PostgresError, OSError):
        conn = await connect(dsn, settings)
        try:
            await conn.execute(f"NOTIFY {CHANNEL}")
        finally:
            await conn.close()


class MigrationState(NamedTuple):
    version: int
    name: str
    applied_at: datetime | None
    """None: pending."""


async def migration_status(dsn: str, settings: Settings) -> list[MigrationState]:
    """Every migration this PiCloud knows, with when it was applied (changes
    nothing; a database migrated by a newer PiCloud is a MigrationError)."""
    migrations = load_migrations(default_migrations_dir())
    conn = await connect(dsn, settings)
    try:
        with translate_errors("migration status"):
            exists = await conn.fetchval("SELECT to_regclass('schema_migrations')")
            rows = (
                await conn.fetch(
                    "SELECT version, checksum, applied_at FROM schema_migrations"
                )
                if exists
                else []
            )
    finally:
        await conn.close()
    _check_history(migrations, {row["version"]: row["checksum"] for row in rows})
    when = {row["version"]: row["applied_at"] for row in rows}
    return [MigrationState(m.version, m.name, when.get(m.version)) for m in migrations]
