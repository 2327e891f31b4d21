"""Read-only runs answer without waiting for their own execution record, and
never before the writes they could have observed are durable.

The appends are held up for real: a transaction of the test's own holds
``LOCK TABLE events IN EXCLUSIVE MODE``, so every append waits in Postgres
(readers still read). A commit fails for real too: a CHECK constraint of
this test's database refuses a value, or Postgres terminates the appending
backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import msgspec
import pytest

from picloud.actors import AppActor, Done, Failure, HttpReply, Reply
from picloud.domain.commands import Command, Invoke, MarkAbandoned, SaveScript
from picloud.events.app import InvocationRecorded, KvSet, RequestRecord
from picloud.store import EventLog
from tests.actors.helpers import Lua, make_actor, make_app

HELLO = 'return "hello"'
READ = 'return {v = kv.collection("c"):get(ctx.request.query.k) or "none"}'
WRITE = (
    'kv.collection("c"):set(ctx.request.query.k, tonumber(ctx.request.query.v))'
    ' return "ok"'
)
_HELD_S = 0.3
"""How long a reply that must wait is watched not to come."""


class HeldAppends:
    """A transaction holding the events table: every append waits for it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def waiting_append(self) -> int:
        """The pid of the backend whose append waits for the lock (polled)."""
        for _ in range(200):
            pid = await self.conn.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if pid is not None:
                return int(pid)
            await asyncio.sleep(0.01)
        raise AssertionError("no append waited for the lock")

    async def kill_waiting_append(self) -> None:
        pid = await self.waiting_append()
        assert await self.conn.fetchval("SELECT pg_terminate_backend($1)", pid)


@asynccontextmanager
async def appends_held(database: str) -> AsyncIterator[HeldAppends]:
    conn = await asyncpg.connect(database)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
            yield HeldAppends(conn)
    finally:
        await conn.close()


def call(route_id: str, n: str, key: str | None = None, **query: str) -> Invoke:
    request = RequestRecord(method="POST", path="/", query=query)
    return Invoke(
        execution_id=f"x-{n}", route_id=route_id, request=request, idempotency_key=key
    )


def body(reply: Reply) -> object:
    assert isinstance(reply, HttpReply), reply
    assert reply.status == 200, reply
    if reply.headers.get("content-type", "").startswith("text/plain"):
        return reply.body.decode()
    return msgspec.json.decode(reply.body)


async def still_waiting(future: asyncio.Future[Reply]) -> None:
    await asyncio.sleep(_HELD_S)
    assert not future.done(), future.result()


async def recorded_runs(event_log: EventLog, actor: AppActor) -> set[str]:
    events = await event_log.read_stream(actor.stream, 0, 100_000)
    return {
        r.event.execution_id for r in events if isinstance(r.event, InvocationRecorded)
    }


async def started(event_log: EventLog) -> tuple[AppActor, Lua]:
    actor = make_actor(event_log, await make_app(event_log))
    await actor.activate()
    return actor, Lua(actor)


async def test_a_read_only_run_answers_while_its_record_cannot_be_appended(
    event_log: EventLog, database: str
) -> None:
    actor, lua = await started(event_log)
    hello, write = await lua.route(HELLO), await lua.route(WRITE)
    async with appends_held(database) as held:
        reply = await asyncio.wait_for(actor.submit(call(hello, "read"), 10), 2)
        assert body(reply) == "hello"
        await held.waiting_append()  # its record's append, held up
        assert "x-read" not in await recorded_runs(event_log, actor)
        wrote = actor.submit(call(write, "write", k="a", v="1"), 10)
        await still_waiting(wrote)  # a run that wrote answers once durable
    assert body(await wrote) == "ok"
    await actor.settled()
    assert {"x-read", "x-write"} <= await recorded_runs(event_log, actor)
    await actor.close()


async def test_a_read_waits_for_the_writes_it_could_observe(
    event_log: EventLog, database: str
) -> None:
    actor, lua = await started(event_log)
    read, write = await lua.route(READ), await lua.route(WRITE)
    async with appends_held(database):
        wrote = actor.submit(call(write, "w", k="a", v="7"), 10)
        await asyncio.sleep(0.05)  # the write's append is in flight
        seen = actor.submit(call(read, "r", k="a"), 10)
        await still_waiting(seen)
        assert not wrote.done()
    assert body(await wrote) == "ok"
    assert body(await seen) == {"v": 7}
    await actor.close()


@pytest.mark.parametrize("failure", ["refused", "terminated"])
async def test_a_read_never_answers_a_value_whose_commit_failed(
    event_log: EventLog, database: str, pool: asyncpg.Pool, failure: str
) -> None:
    # "refused": a rule of this database only (the poison path, one by one);
    # "terminated": Postgres ends the appending backend (the recovery path).
    await pool.execute(
        "ALTER TABLE kv_entries ADD CONSTRAINT no_poison CHECK (key <> 'poison')"
    )
    actor, lua = await started(event_log)
    read, write = await lua.route(READ), await lua.route(WRITE)
    async with appends_held(database) as held:
        wrote = actor.submit(call(write, "w", k="poison", v="42"), 10)
        await held.waiting_append()
        seen = actor.submit(call(read, "r", k="poison"), 10)
        await still_waiting(seen)  # it read 42, not yet durable
        if failure == "terminated":
            await held.kill_waiting_append()
    write_reply, read_reply = await wrote, await seen
    assert isinstance(write_reply, Failure), write_reply
    expected = "invalid_input" if failure == "refused" else "store_unavailable"
    assert write_reply.code == expected
    assert isinstance(read_reply, Failure), f"answered a lost value: {read_reply}"
    assert body(await actor.submit(call(read, "again", k="poison"), 10)) == {
        "v": "none"
    }
    assert actor.broken is None
    await actor.close()


async def test_a_read_only_runs_answer_stands_when_its_record_is_lost(
    event_log: EventLog, database: str
) -> None:
    actor, lua = await started(event_log)
    hello = await lua.route(HELLO)
    async with appends_held(database) as held:
        first = await actor.submit(call(hello, "lost", key="k1"), 10)
        assert body(first) == "hello"
        await held.kill_waiting_append()
    await actor.settled()
    assert "x-lost" not in await recorded_runs(event_log, actor)
    # The key keeps its answer: a retry gets it and runs nothing.
    again = await actor.submit(call(hello, "retry", key="k1"), 10)
    assert again == first
    after = await actor.submit(call(hello, "after"), 10)
    assert body(after) == "hello"
    await actor.settled()
    runs = await recorded_runs(event_log, actor)
    assert "x-after" in runs
    assert "x-retry" not in runs
    await actor.close()


async def test_state_changes_answer_only_once_durable(
    event_log: EventLog, database: str
) -> None:
    actor, lua = await started(event_log)
    write = await lua.route(WRITE)
    queued = await lua.route(HELLO, dispatch_mode="async")
    commands: dict[str, Command] = {
        "write": call(write, "w", k="a", v="1"),
        "async route": call(queued, "q"),
        "abandoned": MarkAbandoned(execution_id="gone"),
        "script": SaveScript(name="later", source=HELLO),
    }
    async with appends_held(database):
        futures = {name: actor.submit(c, 10) for name, c in commands.items()}
        await asyncio.sleep(_HELD_S)
        early = {name: f.result() for name, f in futures.items() if f.done()}
        assert early == {}, "answered before its events were durable"
    replies = {name: await f for name, f in futures.items()}
    assert body(replies["write"]) == "ok"
    accepted = replies["async route"]
    assert isinstance(accepted, HttpReply), accepted
    assert accepted.status == 202
    assert isinstance(replies["abandoned"], Done)
    assert isinstance(replies["script"], Done)
    await actor.close()


async def test_close_appends_the_records_of_answered_runs(
    event_log: EventLog, pool: asyncpg.Pool
) -> None:
    actor, lua = await started(event_log)
    hello, write = await lua.route(HELLO), await lua.route(WRITE)
    reads = [actor.submit(call(hello, f"r{n}"), 10) for n in range(50)]
    wrote = actor.submit(call(write, "w", k="a", v="1"), 10)
    later = [actor.submit(call(hello, f"s{n}"), 10) for n in range(50)]
    for reply in await asyncio.gather(*reads, wrote, *later):
        assert isinstance(reply, HttpReply), reply
    await actor.close()
    runs = await recorded_runs(event_log, actor)
    assert {f"x-r{n}" for n in range(50)} | {f"x-s{n}" for n in range(50)} <= runs
    sets = [
        r.event
        for r in await event_log.read_stream(actor.stream, 0, 10_000)
        if isinstance(r.event, KvSet)
    ]
    assert [(s.key, bytes(s.value)) for s in sets] == [("a", b"1")]


async def _records_and_commits(
    event_log: EventLog, actor: AppActor, prefix: str
) -> tuple[int, int]:
    """How many records of runs ``prefix…`` are in the log, in how many commits."""
    events = await event_log.read_stream(actor.stream, 0, 100_000)
    runs = [
        r
        for r in events
        if isinstance(r.event, InvocationRecorded)
        and r.event.execution_id.startswith(prefix)
    ]
    return len(runs), len({r.txid for r in runs})


async def _logged(event_log: EventLog, actor: AppActor, execution_id: str) -> None:
    """Wait (at most 5 s) until the run's record is in the log."""
    for _ in range(500):
        if (await _records_and_commits(event_log, actor, execution_id))[0]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{execution_id} was never appended")


@pytest.mark.parametrize(("linger_ms", "shared"), [(60_000, True), (0, False)])
async def test_records_of_quiet_read_only_runs_share_their_commits(
    event_log: EventLog, linger_ms: int, shared: bool
) -> None:
    # One run at a time, each answered before the next (one client): with a
    # linger their records wait for each other, without one each commits alone
    # (its append starts at once, so it is in the log before the next run).
    actor = make_actor(event_log, await make_app(event_log), record_linger_ms=linger_ms)
    await actor.activate()
    hello = await Lua(actor).route(HELLO)
    for n in range(10):
        reply = await asyncio.wait_for(actor.submit(call(hello, f"q{n}"), 10), 2)
        assert body(reply) == "hello"
        if not shared:
            await _logged(event_log, actor, f"x-q{n}")
    await actor.settled()
    records, commits = await _records_and_commits(event_log, actor, "x-q")
    assert records == 10
    assert (commits <= 2) if shared else (commits == 10), commits
    await actor.close()


async def test_a_write_never_waits_for_lingering_records(event_log: EventLog) -> None:
    actor = make_actor(event_log, await make_app(event_log), record_linger_ms=60_000)
    await actor.activate()
    lua = Lua(actor)
    hello, write = await lua.route(HELLO), await lua.route(WRITE)
    assert body(await asyncio.wait_for(actor.submit(call(hello, "r1"), 10), 2)) == (
        "hello"
    )
    assert await _records_and_commits(event_log, actor, "x-r1") == (0, 0)  # lingering
    wrote = actor.submit(call(write, "w1", k="a", v="1"), 10)
    assert body(await asyncio.wait_for(wrote, 5)) == "ok"  # not a minute later
    assert await _records_and_commits(event_log, actor, "x-r1") == (1, 1)
    await actor.close()


async def test_settling_and_closing_append_the_lingering_records(
    event_log: EventLog,
) -> None:
    actor = make_actor(event_log, await make_app(event_log), record_linger_ms=60_000)
    await actor.activate()
    hello = await Lua(actor).route(HELLO)
    await actor.submit(call(hello, "s1"), 10)
    await asyncio.wait_for(actor.settled(), 5)  # what the execution list asks
    assert await _records_and_commits(event_log, actor, "x-s1") == (1, 1)
    await actor.submit(call(hello, "s2"), 10)
    await asyncio.wait_for(actor.close(), 5)
    assert await _records_and_commits(event_log, actor, "x-s2") == (1, 1)
