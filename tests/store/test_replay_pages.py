"""The replay's reader and pipeline at their edges: pages and chunks far
smaller than the log (so every boundary is crossed, with system events
between app events), a payload this version cannot read, and the bounds."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from picloud.actors.app_actor import AppActor, app_stream
from picloud.actors.protocol import Done
from picloud.config import Settings
from picloud.domain.commands import DataOp
from picloud.errors import PiCloudError, UnknownEvent
from picloud.store import EventLog
from picloud.store.replay import Replay
from tests.actors.helpers import make_actor, make_app


async def write_history(event_log: EventLog) -> list[str]:
    """Three apps (each creation a system event) whose KV and documents are
    written, overwritten and deleted in turn, through their actors."""
    apps = []
    for n in range(3):
        app = await make_app(event_log, f"pages{n}")
        apps.append(app.id)
        actor = make_actor(event_log, app)
        await actor.activate()
        for step in range(12):
            key = f"k{step % 4}"
            if step % 5 == 4:
                await done(actor, "kv.delete", ["c", key])
            else:
                await done(actor, "kv.set", ["c", key, step])
            await done(actor, "docs.create", ["d", {"n": step}])
        await actor.close()
    return apps


async def done(actor: AppActor, op: str, args: list[Any]) -> None:
    reply = await actor.submit(DataOp(op=op, args=args), 10)
    assert isinstance(reply, Done), reply


async def rebuilt(database: str, settings: Settings, **sizes: int) -> Replay:
    run = await Replay.open(database, settings, f"t_{uuid.uuid4().hex[:8]}")
    run.page = sizes.get("page", run.page)
    run.chunk = sizes.get("chunk", run.chunk)
    return run


async def test_small_pages_and_chunks_rebuild_what_the_live_path_wrote(
    database: str, settings: Settings, event_log: EventLog, pool: asyncpg.Pool
) -> None:
    await write_history(event_log)
    projected = await pool.fetchval(
        "SELECT count(*) FROM events WHERE type NOT LIKE 'invocation.%'"
    )
    run = await rebuilt(database, settings, page=7, chunk=5)
    try:
        await run.rebuild()
        assert await run.compare_live() == []
        assert await run.compare_fold() == []
        assert run.events == projected
        kv = await pool.fetchval("SELECT count(*) FROM kv_entries")
        assert kv > 0
        assert sum(len(state.kv) for state in run.folds.values()) == kv
    finally:
        await run.close(keep=False)


async def test_one_app_up_to_a_position_across_pages(
    database: str, settings: Settings, event_log: EventLog, pool: asyncpg.Pool
) -> None:
    apps = await write_history(event_log)
    middle = await pool.fetchval(
        "SELECT position FROM events WHERE stream = $1 AND stream_version = 10",
        app_stream(apps[1]),
    )
    run = await rebuilt(database, settings, page=4, chunk=3)
    try:
        await run.rebuild(app_id=apps[1], upto_position=middle)
        assert set(run.folds) == {apps[1]}
        assert await run.compare_fold() == []
        rows = await pool.fetchval(
            f"SELECT count(*) FROM {run.schema}.kv_entries"  # noqa: S608  # the test's own schema
        )
        assert rows == len(run.folds[apps[1]].kv)
        assert rows > 0
        # the system stream is cut at the position too: the third app came later
        apps_then = await pool.fetchval(f"SELECT count(*) FROM {run.schema}.apps")  # noqa: S608
        assert apps_then == 2
    finally:
        await run.close(keep=False)


@pytest.mark.parametrize("page", [1_000, 2])
async def test_a_payload_this_version_cannot_read_is_named_by_its_position(
    database: str,
    settings: Settings,
    event_log: EventLog,
    pool: asyncpg.Pool,
    page: int,
) -> None:
    await write_history(event_log)
    foreign = await pool.fetchval(
        "INSERT INTO events (stream, stream_version, type, data)"
        " VALUES ('app-x', 1, 'from.the.future.v9',"
        ' \'{"type": "from.the.future.v9"}\')'
        " RETURNING position"
    )
    run = await rebuilt(database, settings, page=page)
    try:
        with pytest.raises(UnknownEvent) as raised:
            await run.rebuild()
        assert raised.value.position == foreign
    finally:
        await run.close(keep=False)


async def test_a_projection_that_fails_raises_its_own_error_and_closes_cleanly(
    database: str, settings: Settings, event_log: EventLog, pool: asyncpg.Pool
) -> None:
    await write_history(event_log)
    run = await rebuilt(database, settings, page=3, chunk=2)
    await pool.execute(
        f"ALTER TABLE {run.schema}.kv_entries ADD CONSTRAINT refused CHECK (false)"
    )
    try:
        with pytest.raises(PiCloudError) as raised:
            await run.rebuild()
        assert "refused" in str(raised.value.__cause__)
    finally:
        await run.close(keep=False)  # the reader is idle again: it can roll back
    schemas = await pool.fetchval(
        "SELECT count(*) FROM pg_namespace WHERE nspname = $1", run.schema
    )
    assert schemas == 0
