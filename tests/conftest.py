"""Session fixtures: one real Postgres (embedded unless PICLOUD_TEST_DATABASE_URL),
a migrated template database, and a fresh database copied from it per test."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from picloud import event_loop
from picloud.config import Settings
from picloud.store import CommitSignals, EmbeddedPostgres, EventLog
from picloud.store._pool import create_pool
from picloud.store.migrations import apply_migrations
from tests.helpers import create_database, drop_database, dsn_for, public_temp_dir

TEMPLATE = "picloud_template"


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Tests run on the event loop PiCloud runs on."""
    return {"uvloop": event_loop.new_event_loop}


@pytest.fixture
def data_home() -> Iterator[Path]:
    """A data directory for a ``picloud`` subprocess with the embedded database."""
    home = public_temp_dir("picloud-test-data-")
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The DSN of a maintenance database on the session's Postgres server."""
    url = os.environ.get("PICLOUD_TEST_DATABASE_URL")
    if url:
        yield url
        return
    home = public_temp_dir("picloud-test-pg-")
    embedded = EmbeddedPostgres(home, cleanup_mode="delete")
    try:
        yield embedded.start("postgres")
    finally:
        embedded.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
async def template_db(pg_server: str) -> str:
    """A database migrated once; each test gets a copy (CREATE DATABASE … TEMPLATE)."""
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(dsn_for(pg_server, TEMPLATE))
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    return TEMPLATE


@pytest.fixture
async def database(pg_server: str, template_db: str) -> AsyncIterator[str]:
    """The DSN of a fresh, migrated database of this test's own."""
    dsn = await create_database(pg_server, template_db)
    yield dsn
    await drop_database(pg_server, dsn)


@pytest.fixture
async def empty_database(pg_server: str) -> AsyncIterator[str]:
    """The DSN of a fresh database with no migrations applied."""
    dsn = await create_database(pg_server)
    yield dsn
    await drop_database(pg_server, dsn)


@pytest.fixture
def settings() -> Settings:
    return Settings(db_pool_min=1, db_pool_max=8)


@pytest.fixture
async def pool(database: str, settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database, settings)
    yield pool
    await pool.close()


@pytest.fixture
def event_log(pool: asyncpg.Pool) -> EventLog:
    return EventLog(pool, CommitSignals())


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One real local Ray for the whole test session."""
    import ray  # noqa: PLC0415  # a slow import: the pure-layer tests never pay it

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.WARNING,
        namespace="picloud-tests",
    )
    yield
    ray.shutdown()
