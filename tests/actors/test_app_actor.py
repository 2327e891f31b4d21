"""AppActor without Ray: commands, group commit, recovery, activation."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from picloud.actors.app_actor import AppActor, app_stream
from picloud.actors.protocol import Done, Failure, HttpReply, Reply
from picloud.domain.commands import AddRoute, DeleteScript, Invoke, SaveScript
from picloud.events.app import RequestRecord
from picloud.store import EventLog
from tests.actors.helpers import HELLO, make_actor, make_app


async def ask(actor: AppActor, command: Any) -> Reply:
    return await actor.submit(command, 10.0)


async def setup_route(actor: AppActor, source: str = HELLO) -> tuple[str, str]:
    saved = await ask(actor, SaveScript(name="hello", source=source))
    assert isinstance(saved, Done), saved
    script_id = saved.result.id
    added = await ask(
        actor, AddRoute(script_id=script_id, method="GET", path="/hi/{name}")
    )
    assert isinstance(added, Done), added
    return script_id, added.result.id


def invoke(route_id: str, n: int = 0, name: str = "ann") -> Invoke:
    request = RequestRecord(method="GET", path=f"/hi/{name}", params={"name": name})
    return Invoke(execution_id=f"e{n}", route_id=route_id, request=request)


async def test_script_route_invoke_round_trip(event_log: EventLog) -> None:
    app = await make_app(event_log)
    actor = make_actor(event_log, app)
    await actor.activate()
    _, route_id = await setup_route(actor)
    reply = await ask(actor, invoke(route_id))
    assert isinstance(reply, HttpReply)
    assert reply.status == 200
    assert msgspec.json.decode(reply.body) == {"hello": "ann"}
    await actor.settled()  # a run that wrote nothing answers before its record
    types = [r.type for r in await event_log.read_stream(app_stream(app.id))]
    assert types == ["script.saved.v1", "route.added.v1", "invocation.recorded.v1"]
    await actor.close()


async def test_concurrent_invocations_share_appends(event_log: EventLog) -> None:
    app = await make_app(event_log)
    actor = make_actor(event_log, app)
    await actor.activate()
    _, route_id = await setup_route(actor)
    replies = await asyncio.gather(
        *(ask(actor, invoke(route_id, n)) for n in range(200))
    )
    assert all(isinstance(r, HttpReply) and r.status == 200 for r in replies)
    await actor.settled()
    recorded = await event_log.read_stream(app_stream(app.id), 2, 1000)
    assert len(recorded) == 200
    transactions = {r.txid for r in recorded}
    assert len(transactions) < 50  # group commit: many invocations per append
    await actor.close()


async def test_bad_commands_answer_failures_and_record_nothing(
    event_log: EventLog,
) -> None:
    app = await make_app(event_log)
    actor = make_actor(event_log, app)
    await actor.activate()
    script_id, _ = await setup_route(actor)
    for command, code in [
        (SaveScript(name="hello", source="return 1"), "conflict"),
        (SaveScript(name="9bad", source="return 1"), "invalid_input"),
        (SaveScript(name="broken", source="return {"), "script_syntax_error"),
        (AddRoute(script_id=script_id, method="GET", path="/hi/{other}"), "conflict"),
        (AddRoute(script_id=script_id, method="BREW", path="/x"), "invalid_input"),
        (AddRoute(script_id=script_id, method="GET", path="no-slash"), "invalid_input"),
        (AddRoute(script_id="nope", method="GET", path="/x"), "not_found"),
        (DeleteScript(script_id="nope"), "not_found"),
    ]:
        reply = await ask(actor, command)
        assert isinstance(reply, Failure), (command, reply)
        assert reply.code == code, (command, reply)
    assert await event_log.stream_version(app_stream(app.id)) == 2
    await actor.close()


async def test_activation_rebuilds_state_and_a_snapshot_speeds_it(
    event_log: EventLog,
) -> None:
    app = await make_app(event_log)
    actor = make_actor(event_log, app, app_snapshot_every=5)
    await actor.activate()
    _, route_id = await setup_route(actor)
    for n in range(6):
        await ask(actor, invoke(route_id, n))
    await actor.close()
    snapshot_version = await event_log.pool.fetchval(
        "SELECT version FROM snapshots WHERE stream = $1", app_stream(app.id)
    )
    assert snapshot_version is not None
    assert snapshot_version >= 5
    again = make_actor(event_log, app)
    await again.activate()
    assert again.version == 8
    assert again.state == actor.state
    reply = await ask(again, invoke(route_id, 99, "bob"))
    assert isinstance(reply, HttpReply)
    assert msgspec.json.decode(reply.body) == {"hello": "bob"}
    await again.close()


async def test_a_zombie_writer_is_stopped_and_recovers(event_log: EventLog) -> None:
    app = await make_app(event_log)
    first = make_actor(event_log, app)
    await first.activate()
    _, route_id = await setup_route(first)
    second = make_actor(event_log, app)  # a failover took the app elsewhere
    await second.activate()
    assert isinstance(await ask(second, invoke(route_id, 1)), HttpReply)
    await second.settled()
    stale = await ask(first, SaveScript(name="stale", source="return 1"))
    assert isinstance(stale, Failure)
    assert stale.code == "unavailable"
    await first.settled()  # the zombie's reload after the refused append
    # The zombie reloaded from the log; the new writer moves on again. A
    # read-only run of the zombie answers (it wrote nothing), but its record
    # is refused like any append of a zombie, which then reloads again.
    assert isinstance(await ask(second, invoke(route_id, 2)), HttpReply)
    await second.settled()
    assert isinstance(await ask(first, invoke(route_id, 3)), HttpReply)
    await first.settled()
    assert first.version == second.version == 4
    assert "stale" not in first.state.script_names
    executions = [
        r.event.execution_id  # type: ignore[attr-defined]  # InvocationRecorded
        for r in await event_log.read_stream(app_stream(app.id))
        if r.type == "invocation.recorded.v1"
    ]
    assert executions == ["e1", "e2"]
    versions = [r.version for r in await event_log.read_stream(app_stream(app.id))]
    assert versions == list(range(1, len(versions) + 1))
    await first.close()
    await second.close()


async def test_script_errors_answer_500_with_the_execution_id(
    event_log: EventLog,
) -> None:
    app = await make_app(event_log)
    actor = make_actor(event_log, app)
    await actor.activate()
    _, route_id = await setup_route(actor, 'log.info("before") error("boom")')
    reply = await ask(actor, invoke(route_id, 7))
    assert isinstance(reply, HttpReply)
    assert reply.status == 500
    body = msgspec.json.decode(reply.body)
    assert body["error"]["execution_id"] == "e7"
    assert "boom" not in reply.body.decode()
    await actor.settled()
    [recorded] = await event_log.read_stream(app_stream(app.id), 2)
    event: Any = recorded.event
    assert event.status == "error"
    assert "boom" in event.error
    assert [line.message for line in event.logs] == ["before"]
    await actor.close()


@pytest.mark.parametrize("count", [3])
async def test_idempotency_key_applies_once(event_log: EventLog, count: int) -> None:
    app = await make_app(event_log)
    actor = make_actor(event_log, app)
    await actor.activate()
    command = SaveScript(name="once", source="return 1", idempotency_key="k1")
    replies = [await ask(actor, command) for _ in range(count)]
    assert all(isinstance(r, Done) for r in replies)
    assert await event_log.stream_version(app_stream(app.id)) == 1
    await actor.close()
