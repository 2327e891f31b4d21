from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from picloud.errors import MigrationError
from picloud.store.migrations import (
    apply_migrations,
    default_migrations_dir,
    load_migrations,
)


async def test_migrations_apply_once_and_are_idempotent(empty_database: str) -> None:
    every = [m.version for m in load_migrations(default_migrations_dir())]
    conn = await asyncpg.connect(empty_database)
    try:
        assert await apply_migrations(conn) == every
        assert await apply_migrations(conn) == []
        rows = await conn.fetch(
            "SELECT version FROM schema_migrations ORDER BY version"
        )
        assert [r["version"] for r in rows] == every
        assert await conn.fetchval("SELECT count(*) FROM events") == 0
    finally:
        await conn.close()


async def test_concurrent_starts_apply_each_migration_once(empty_database: str) -> None:
    conns = [await asyncpg.connect(empty_database) for _ in range(4)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in conns))
        applied = sorted(v for result in results for v in result)
        every = [m.version for m in load_migrations(default_migrations_dir())]
        assert applied == every  # all of them, by exactly one of the starters
    finally:
        for c in conns:
            await c.close()


async def test_changed_applied_migration_is_detected(
    empty_database: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), directory)
    conn = await asyncpg.connect(empty_database)
    try:
        await apply_migrations(conn, directory)
        first = sorted(directory.glob("0001_*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited after the fact\n")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await apply_migrations(conn, directory)
    finally:
        await conn.close()


async def test_database_newer_than_the_code_is_refused(
    empty_database: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), directory)
    (directory / "9999_from_the_future.sql").write_text("SELECT 1;")
    conn = await asyncpg.connect(empty_database)
    try:
        await apply_migrations(conn, directory)
        (directory / "9999_from_the_future.sql").unlink()
        with pytest.raises(MigrationError, match="newer version"):
            await apply_migrations(conn, directory)
    finally:
        await conn.close()


def test_misnamed_migration_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_bad.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        load_migrations(tmp_path)
