"""When Postgres itself refuses a value of one command in a group commit, the
other commands of the batch are committed without it; only the culprit fails."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from picloud.actors import Failure, HttpReply
from picloud.domain.commands import Invoke
from picloud.events.app import RequestRecord
from picloud.store import EventLog
from tests.actors.helpers import Lua, make_actor, make_app

WRITE = 'kv.collection("c"):set(ctx.request.query.k, 1) return "ok"'


async def test_a_refused_value_fails_only_its_own_command(
    event_log: EventLog, pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    # A rule of this database only: Postgres refuses this one key.
    await pool.execute(
        "ALTER TABLE kv_entries ADD CONSTRAINT no_poison CHECK (key <> 'poison')"
    )
    app = await make_app(event_log)
    actor = make_actor(event_log, app)
    await actor.activate()
    route_id = await Lua(actor).route(WRITE)
    keys = [f"k{n}" for n in range(10)]
    keys.insert(5, "poison")

    def invoke(key: str) -> Invoke:
        request = RequestRecord(method="POST", path="/", query={"k": key})
        return Invoke(execution_id=f"e-{key}", route_id=route_id, request=request)

    # Submitted together: they run while one append is in flight, so several
    # share a batch with the culprit.
    replies = await asyncio.gather(*(actor.submit(invoke(k), 10) for k in keys))
    by_key = dict(zip(keys, replies, strict=True))
    culprit = by_key.pop("poison")
    assert isinstance(culprit, Failure), culprit
    assert culprit.code == "invalid_input"
    for key, reply in by_key.items():
        assert isinstance(reply, HttpReply), (key, reply)
        assert reply.status == 200
    stored = {
        row["key"]
        for row in await pool.fetch(
            "SELECT key FROM kv_entries WHERE app_id = $1", app.id
        )
    }
    assert stored == set(by_key)
    again = await actor.submit(invoke("after"), 10)
    assert isinstance(again, HttpReply)
    assert again.status == 200, "the actor recovered from the log"
    await actor.close()
