"""Snapshots are an optimisation: a corrupt, unreadable or impossible snapshot
row still activates the app correctly (from the whole log), and says so."""

from __future__ import annotations

import logging

import asyncpg
import pytest

from picloud.actors.app_actor import app_stream
from picloud.actors.protocol import Done, HttpReply
from picloud.domain.commands import AddRoute, Invoke, SaveScript
from picloud.events.app import RequestRecord
from picloud.events.snapshot import encode_snapshot
from picloud.store import EventLog
from tests.actors.helpers import make_actor, make_app


@pytest.mark.parametrize(
    "row",
    [
        b"\x00\xffnot json at all",
        b'{"format": "snapshot.v2", "version": 2, "scripts": "no"}',
        b"ahead",  # replaced below by a readable snapshot past the log's end
    ],
)
async def test_a_bad_snapshot_row_activates_from_the_log_and_is_logged(
    event_log: EventLog,
    pool: asyncpg.Pool,
    caplog: pytest.LogCaptureFixture,
    row: bytes,
) -> None:
    app = await make_app(event_log)
    actor = make_actor(event_log, app, app_snapshot_every=1)
    await actor.activate()
    saved = await actor.submit(SaveScript(name="s", source="return {v = 7}"), 10)
    assert isinstance(saved, Done)
    added = await actor.submit(
        AddRoute(script_id=saved.result.id, method="GET", path="/v"), 10
    )
    assert isinstance(added, Done)
    expected = actor.state
    await actor.close()
    stream = app_stream(app.id)
    if row == b"ahead":
        row = encode_snapshot(expected, actor.deliveries, 99)
    await pool.execute(
        "UPDATE snapshots SET state = $2, version = 2 WHERE stream = $1", stream, row
    )
    assert await pool.fetchval("SELECT count(*) FROM snapshots") == 1

    caplog.set_level(logging.WARNING, logger="picloud.actors.app_actor")
    again = make_actor(event_log, app)
    await again.activate()
    assert again.state == expected
    assert again.version == 2
    assert f"snapshot of {stream}" in caplog.text
    assert "replaying its log" in caplog.text
    reply = await again.submit(
        Invoke(
            execution_id="x1",
            route_id=added.result.id,
            request=RequestRecord(method="GET", path="/v"),
        ),
        10,
    )
    assert isinstance(reply, HttpReply)
    assert reply.status == 200
    await again.close()
