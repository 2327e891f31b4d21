"""Triggers, retries and dead letters on a real AppActor, Postgres and Lua."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import msgspec

from picloud.actors.app_actor import AppActor, app_stream
from picloud.actors.protocol import Done, Failure
from picloud.domain.commands import AddTrigger, ReplayDeadLetter, ResolveDeadLetter
from picloud.events import RecordedEvent
from picloud.events.app import InvocationRecorded
from picloud.store import EventLog
from tests.actors.helpers import Lua, make_actor, make_app

FAST_RETRIES = {
    "trigger_retry_base_ms": 100,
    "trigger_retry_max_ms": 1_000,
    "trigger_retry_jitter": 0.0,
    "trigger_retry_max_attempts": 3,
}


async def setup(event_log: EventLog, **settings: Any) -> Lua:
    app = await make_app(event_log, "trig")
    actor = make_actor(event_log, app, **{**FAST_RETRIES, **settings})
    await actor.activate()
    return Lua(actor)


async def add_trigger(lua: Lua, kind: str, source: str, **options: Any) -> str:
    script_id = await script(lua, source)
    reply = await lua.actor.submit(
        AddTrigger(kind=kind, script_id=script_id, **options), 10
    )
    assert isinstance(reply, Done), reply
    return str(reply.result.id)


async def script(lua: Lua, source: str) -> str:
    from picloud.domain.commands import SaveScript  # noqa: PLC0415

    reply = await lua.actor.submit(
        SaveScript(name=f"h{id(source) % 10**8}", source=source), 10
    )
    assert isinstance(reply, Done), reply
    return str(reply.result.id)


async def events(event_log: EventLog, actor: AppActor) -> list[RecordedEvent]:
    return await event_log.read_stream(app_stream(actor.app.id), 0, 100_000)


async def until(predicate: Any, within: float = 10.0) -> None:
    """Poll ``predicate`` (an async check of the database) until it holds."""
    async with asyncio.timeout(within):
        while not await predicate():  # noqa: ASYNC110  # polling a database, not an event
            await asyncio.sleep(0.02)


RECORD_EVENT = """
local e = ctx.event
kv.collection("seen"):set(e.source .. ":" .. e.op .. ":" .. (e.key or e.id), e)
"""


async def seen(lua: Lua) -> dict[str, Any]:
    result = await lua.run("""
        local page = kv.collection("seen"):list{limit = 1000}
        local out = {}
        for _, item in ipairs(page.items) do out[item.key] = item.value end
        return {seen = out}
    """)
    return dict(result.get("seen") or {})


async def test_kv_trigger_fires_once_per_matching_write_with_the_event(
    event_log: EventLog,
) -> None:
    lua = await setup(event_log)
    await add_trigger(
        lua, "kv", RECORD_EVENT, ops=["set", "delete"], collection="watched"
    )
    await lua.run("""
        local w = kv.collection("watched")
        w:set("a", {n = 1})
        w:set("b", {n = 2})
        w:set("a", {n = 3})
        w:delete("a")
        kv.collection("ignored"):set("b", 1)
    """)

    async def three() -> bool:
        return len(await seen(lua)) == 3

    await until(three)
    got = await seen(lua)
    assert set(got) == {"kv:set:a", "kv:set:b", "kv:delete:a"}
    assert got["kv:set:a"]["value"] == {"n": 3}
    assert got["kv:set:a"]["prev_value"] == {"n": 1}
    assert "prev_value" not in got["kv:set:b"]  # nil on create
    runs = [
        r.event
        for r in await events(event_log, lua.actor)
        if r.type == "invocation.recorded.v1"
    ]
    trigger_runs = [e for e in runs if e.delivery_id is not None]  # type: ignore[attr-defined]
    assert len(trigger_runs) == 4  # exactly once per matching write
    assert got["kv:delete:a"] == {
        "source": "kv",
        "op": "delete",
        "collection": "watched",
        "key": "a",
        "prev_value": {"n": 3},
    }


async def test_docs_trigger_gets_prev_data(event_log: EventLog) -> None:
    lua = await setup(event_log)
    await add_trigger(lua, "docs", RECORD_EVENT, ops=["update"])
    created = await lua.run('return docs.collection("p"):create{v = 1}')
    await lua.run(f'docs.collection("p"):update("{created["id"]}", {{v = 2}})')

    async def one() -> bool:
        return len(await seen(lua)) == 1

    await until(one)
    [event] = (await seen(lua)).values()
    assert event["source"] == "docs"
    assert event["op"] == "update"
    assert event["id"] == created["id"]
    assert event["data"] == {"v": 2}
    assert event["prev_data"] == {"v": 1}


async def test_failing_handler_retries_with_growing_delays_then_dead_letters(
    event_log: EventLog,
) -> None:
    lua = await setup(event_log)
    await add_trigger(lua, "kv", 'error("handler broke")', collection="in")
    await lua.run('kv.collection("in"):set("x", 1)')

    async def dead() -> bool:
        return any(
            r.type == "dead_letter.created.v1"
            for r in await events(event_log, lua.actor)
        )

    await until(dead)
    log = await events(event_log, lua.actor)
    attempts = [
        r.event
        for r in log
        if isinstance(r.event, InvocationRecorded) and r.event.delivery_id
    ]
    assert [a.attempt for a in attempts] == [1, 2, 3]
    starts = [a.started_at for a in attempts]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert gaps[0] >= 0.09
    assert gaps[1] >= 0.19  # doubled
    assert gaps[1] > gaps[0]
    retries = [r.event for r in log if r.type == "delivery.retry_scheduled.v1"]
    assert [e.attempt for e in retries] == [2, 3]  # type: ignore[attr-defined]
    [letter] = [r.event for r in log if r.type == "dead_letter.created.v1"]
    assert letter.attempts == 3  # type: ignore[attr-defined]
    assert "handler broke" in letter.error  # type: ignore[attr-defined]
    assert msgspec.json.decode(letter.event)["key"] == "x"  # type: ignore[attr-defined]
    assert not lua.actor.deliveries  # nothing pending any more
    row = await event_log.pool.fetchrow("SELECT attempts, resolution FROM dead_letters")
    assert (row["attempts"], row["resolution"]) == (3, None)


async def test_dead_letter_trigger_fires_and_its_failure_stops_the_recursion(
    event_log: EventLog,
) -> None:
    lua = await setup(event_log, trigger_retry_max_attempts=1)
    await add_trigger(lua, "kv", 'error("first")', collection="in")
    await add_trigger(
        lua, "dead_letter", RECORD_EVENT.replace("(e.key or e.id)", "e.dead_letter.id")
    )
    await add_trigger(lua, "dead_letter", 'error("dead letter handler broke too")')
    await lua.run('kv.collection("in"):set("x", 1)')

    async def handled() -> bool:
        row = await event_log.pool.fetchrow("SELECT resolution FROM dead_letters")
        return (
            row is not None
            and row["resolution"] == "handler_failed"
            and len(await seen(lua)) == 1
        )

    await until(handled)
    await asyncio.sleep(0.5)  # nothing else may follow
    log = await events(event_log, lua.actor)
    assert sum(r.type == "dead_letter.created.v1" for r in log) == 1
    assert sum(r.type == "dead_letter.handler_failed.v1" for r in log) == 1
    assert not any(
        r.type == "delivery.retry_scheduled.v1"
        and r.event.delivery_id.startswith("dl:")  # type: ignore[attr-defined]
        for r in log
    )
    [event] = (await seen(lua)).values()
    assert event["source"] == "dead_letter"
    assert event["dead_letter"]["error"].endswith("first")
    assert not lua.actor.deliveries


async def test_a_trigger_loop_stops_at_the_depth_limit(event_log: EventLog) -> None:
    lua = await setup(event_log, max_trigger_depth=3)
    await add_trigger(
        lua,
        "kv",
        'local c = kv.collection("loop") c:set("n", (c:get("n") or 0) + 1)',
        collection="loop",
    )
    await lua.run('kv.collection("loop"):set("n", 0)')

    async def skipped() -> bool:
        return any(
            r.type == "delivery.skipped.v1" for r in await events(event_log, lua.actor)
        )

    await until(skipped)
    assert await lua.run('return {n = kv.collection("loop"):get("n")}') == {"n": 3}
    log = await events(event_log, lua.actor)
    assert not any(r.type == "dead_letter.created.v1" for r in log)
    [skip] = [r.event for r in log if r.type == "delivery.skipped.v1"]
    assert "depth 4" in skip.reason  # type: ignore[attr-defined]


async def test_replay_runs_the_event_again_and_resolve_records_who(
    event_log: EventLog,
) -> None:
    lua = await setup(event_log, trigger_retry_max_attempts=1)
    handler = """
        if kv.collection("cfg"):get("broken") then error("still broken") end
        kv.collection("done"):set(ctx.event.key, true)
    """
    await add_trigger(lua, "kv", handler, collection="jobs")
    await lua.run(
        'kv.collection("cfg"):set("broken", true) kv.collection("jobs"):set("j1", 1)'
    )

    async def lettered() -> bool:
        count = await event_log.pool.fetchval("SELECT count(*) FROM dead_letters")
        return bool(count == 1)

    await until(lettered)
    letter_id = await event_log.pool.fetchval("SELECT id FROM dead_letters")
    await lua.run('kv.collection("cfg"):delete("broken")')
    reply = await lua.actor.submit(
        ReplayDeadLetter(dead_letter_id=letter_id, actor="user:ann"), 10
    )
    assert isinstance(reply, Done)

    async def replayed() -> bool:
        found = await lua.run('return {d = kv.collection("done"):get("j1")}')
        return bool(found == {"d": True})

    await until(replayed)
    row = await event_log.pool.fetchrow(
        "SELECT resolution, resolved_by FROM dead_letters"
    )
    assert (row["resolution"], row["resolved_by"]) == ("replayed", "user:ann")
    resolved = await lua.actor.submit(
        ResolveDeadLetter(dead_letter_id=letter_id, actor="user:bob"), 10
    )
    assert isinstance(resolved, Done)
    row = await event_log.pool.fetchrow(
        "SELECT resolution, resolved_by, resolved_at FROM dead_letters"
    )
    assert (row["resolution"], row["resolved_by"]) == ("resolved", "user:bob")
    assert row["resolved_at"] is not None
    again = await lua.actor.submit(ReplayDeadLetter(dead_letter_id=letter_id), 10)
    assert isinstance(again, Failure)
    assert again.code == "conflict"


async def test_retries_scheduled_before_a_restart_still_happen(
    event_log: EventLog,
) -> None:
    lua = await setup(
        event_log, trigger_retry_base_ms=600, trigger_retry_max_attempts=2
    )
    handler = (
        'if not kv.collection("cfg"):get("ok") then error("not yet") end'
        ' kv.collection("done"):set("r", 1)'
    )
    await add_trigger(lua, "kv", handler, collection="jobs")
    await lua.run('kv.collection("jobs"):set("r", 1)')

    async def retry_scheduled() -> bool:
        return any(
            r.type == "delivery.retry_scheduled.v1"
            for r in await events(event_log, lua.actor)
        )

    await until(retry_scheduled)
    await lua.run('kv.collection("cfg"):set("ok", true)')
    await lua.actor.close()  # the actor goes away with the retry pending
    wakeup = await event_log.pool.fetchval("SELECT due_at FROM app_wakeups")
    assert wakeup is not None
    again = make_actor(
        event_log, lua.actor.app, **{**FAST_RETRIES, "trigger_retry_base_ms": 600}
    )
    await again.activate()
    revived = Lua(again)

    async def done() -> bool:
        found = await revived.run('return {r = kv.collection("done"):get("r")}')
        return bool(found == {"r": 1})

    await until(done)
    assert not again.deliveries
    assert await event_log.pool.fetchval("SELECT count(*) FROM app_wakeups") == 0
