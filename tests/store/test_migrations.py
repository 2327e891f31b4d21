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


async def test_the_run_columns_are_filled_for_runs_logged_before_them(
    empty_database: str, tmp_path: Path
) -> None:
    before = tmp_path / "before-0020"
    before.mkdir()
    for migration in default_migrations_dir().glob("*.sql"):
        if int(migration.name[:4]) < 20:
            shutil.copy(migration, before)
    conn = await asyncpg.connect(empty_database)
    try:
        await apply_migrations(conn, before)
        await conn.execute(
            "INSERT INTO events (stream, stream_version, type, data) VALUES"
            " ('app-a', 1, 'invocation.recorded.v1',"
            '  \'{"execution_id": "e1", "delivery_id": "d1",'
            '    "status": "error"}\'),'
            " ('app-a', 2, 'invocation.accepted.v1', '{\"execution_id\": \"e2\"}'),"
            " ('app-a', 3, 'kv.set.v1', '{\"execution_id\": \"not a run\"}')"
        )
        await apply_migrations(conn)
        rows = await conn.fetch(
            "SELECT stream_version, execution_id, delivery_id, run_status"
            " FROM events ORDER BY stream_version"
        )
        assert [tuple(r) for r in rows] == [
            (1, "e1", "d1", "error"),
            (2, "e2", None, None),
            (3, None, None, None),
        ]
    finally:
        await conn.close()


async def test_no_index_of_the_log_parses_its_json(database: str) -> None:
    # The log's payloads are `json` text: an index on `data ->> …` parses
    # every matching row's whole text on the append path (migrations/0020).
    # Only script saves (an admin's action, not a request's) may pay that.
    conn = await asyncpg.connect(database)
    try:
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events'"
        )
    finally:
        await conn.close()
    assert len(indexes) >= 4, indexes
    parsing = [r["indexname"] for r in indexes if "->" in r["indexdef"]]
    assert parsing == ["events_script_saves_idx"]
