from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from picloud.config import Settings
from picloud.errors import VersionConflict
from picloud.events import AppCreated, AppUpdated, EventMeta, RecordedEvent, utcnow
from picloud.store import START, CommitSignals, Cursor, EventLog, relay_commit_signals
from picloud.store._pool import create_pool


def created(n: int) -> AppCreated:
    return AppCreated(at=utcnow(), app_id=f"app{n}", slug=f"app-{n}", name=f"App {n}")


async def test_append_and_read_stream_round_trips(event_log: EventLog) -> None:
    meta = EventMeta(actor="user:1", correlation_id="c1", trigger_depth=2)
    written = await event_log.append("app-x", 0, [created(1), created(2)], meta)
    assert [r.version for r in written] == [1, 2]
    assert written[0].position < written[1].position
    read = await event_log.read_stream("app-x")
    assert [r.event for r in read] == [created_event.event for created_event in written]
    assert read[0].meta == meta
    assert read[1].type == "app.created.v1"
    assert await event_log.stream_version("app-x") == 2
    assert await event_log.stream_version("nothing") == 0


async def test_concurrent_appends_with_the_same_expected_version_exactly_one_wins(
    event_log: EventLog,
) -> None:
    await event_log.append("s", 0, [created(0)])

    async def attempt(n: int) -> bool:
        try:
            await event_log.append("s", 1, [created(n)])
        except VersionConflict:
            return False
        return True

    outcomes = await asyncio.gather(*(attempt(n) for n in range(1, 9)))
    assert sorted(outcomes) == [False] * 7 + [True]
    assert await event_log.stream_version("s") == 2


async def test_append_ahead_of_the_stream_is_a_conflict_not_a_gap(
    event_log: EventLog,
) -> None:
    await event_log.append("s", 0, [created(0)])
    with pytest.raises(VersionConflict):
        await event_log.append("s", 5, [created(1)])
    with pytest.raises(VersionConflict):
        await event_log.append("s", 0, [created(1)])
    assert [r.version for r in await event_log.read_stream("s")] == [1]


async def test_a_failed_transaction_writes_nothing(event_log: EventLog) -> None:
    async def append_then_fail() -> None:
        async with event_log.transaction() as tx:
            await tx.append("s", 0, [created(1)])
            raise RuntimeError("after the append")

    with pytest.raises(RuntimeError):
        await append_then_fail()
    assert await event_log.read_stream("s") == []


async def test_cancelled_append_leaves_no_partial_write(event_log: EventLog) -> None:
    entered = asyncio.Event()

    async def slow_append() -> None:
        async with event_log.transaction() as tx:
            await tx.append("s", 0, [created(1), created(2)])
            entered.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(slow_append())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await event_log.read_stream("s") == []
    await event_log.append("s", 0, [created(3)])  # the stream is still writable


async def test_connection_killed_mid_append_leaves_no_partial_write(
    event_log: EventLog, pool: asyncpg.Pool
) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def doomed() -> None:
        async with event_log.transaction() as tx:
            await tx.append("s", 0, [created(1)])
            await tx.conn.fetchval("SELECT pg_backend_pid()")
            entered.set()
            await release.wait()
            await tx.append("s", 1, [created(2)])

    task = asyncio.create_task(doomed())
    await entered.wait()
    await pool.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE state = 'idle in transaction' AND datname = current_database()"
    )
    release.set()
    with pytest.raises(Exception):  # noqa: B017, PT011  # any error: the connection is gone
        await task
    assert await event_log.read_stream("s") == []


async def test_global_reader_never_skips_an_event_that_commits_late(
    event_log: EventLog,
) -> None:
    hold = asyncio.Event()
    appended = asyncio.Event()

    async def slow_writer() -> RecordedEvent:
        async with event_log.transaction() as tx:
            [recorded] = await tx.append("slow", 0, [created(1)])
            appended.set()
            await hold.wait()
        return recorded

    slow = asyncio.create_task(slow_writer())
    await appended.wait()
    [fast] = await event_log.append("fast", 0, [created(2)])

    seen, cursor = await event_log.read_all(START)
    assert seen == []  # the fast event waits behind the open transaction
    hold.set()
    early = await slow
    assert early.position < fast.position
    seen, cursor = await event_log.read_all(cursor)
    assert [r.position for r in seen] == [early.position, fast.position]
    again, _ = await event_log.read_all(cursor)
    assert again == []


async def test_follower_sees_every_event_once_with_many_writers_out_of_order(
    event_log: EventLog,
) -> None:
    writers, per_writer = 6, 15
    total = writers * per_writer
    collected: list[RecordedEvent] = []

    async def follow() -> None:
        async for batch, _ in event_log.follow(START, poll_interval=0.05):
            collected.extend(batch)
            if len(collected) >= total:
                return

    async def writer(w: int) -> None:
        for i in range(per_writer):
            async with event_log.transaction() as tx:
                await tx.append(f"w{w}", i, [created(w * 100 + i)])
                await asyncio.sleep(
                    0.001 * ((w * 7 + i * 3) % 5)
                )  # commit out of order

    async with asyncio.timeout(30):
        follower = asyncio.create_task(follow())
        await asyncio.gather(*(writer(w) for w in range(writers)))
        await follower
    positions = [r.position for r in collected]
    assert len(positions) == len(set(positions)) == total
    assert [(r.txid, r.position) for r in collected] == sorted(
        (r.txid, r.position) for r in collected
    )
    per_stream: dict[str, list[int]] = {}
    for r in collected:
        per_stream.setdefault(r.stream, []).append(r.version)
    assert all(v == list(range(1, per_writer + 1)) for v in per_stream.values())


async def test_read_all_filters_by_stream_and_type(event_log: EventLog) -> None:
    await event_log.append("a", 0, [created(1)])
    await event_log.append(
        "b", 0, [AppUpdated(at=utcnow(), app_id="app1", slug="x", name="y")]
    )
    only_b, _ = await event_log.read_all(START, stream="b")
    assert [r.stream for r in only_b] == ["b"]
    updated, _ = await event_log.read_all(START, types=["app.updated.v1"])
    assert [r.type for r in updated] == ["app.updated.v1"]
    everything, end = await event_log.read_all(START)
    assert end == await event_log.latest_cursor()
    assert Cursor.parse(end.token()) == end
    later, _ = await event_log.read_all(START, from_position=everything[1].position)
    assert [r.position for r in later] == [everything[1].position]


async def test_subscriber_in_another_process_wakes_within_100ms(
    database: str, settings: Settings
) -> None:
    """Two EventLogs with their own CommitSignals stand for two processes; only
    LISTEN/NOTIFY connects them, and the backstop poll is 10 s."""
    writer_pool = await create_pool(database, settings)
    reader_pool = await create_pool(database, settings)
    writer = EventLog(writer_pool, CommitSignals())
    reader = EventLog(reader_pool, CommitSignals())
    latencies: list[float] = []
    try:
        async with (
            relay_commit_signals(writer.signals, database, settings),
            relay_commit_signals(reader.signals, database, settings),
        ):
            await asyncio.sleep(0.2)  # let both LISTEN connections come up
            follower = reader.follow(START, poll_interval=10.0)
            for n in range(5):
                committed = time.monotonic()
                await writer.append("s", n, [created(n)])
                async with asyncio.timeout(2):
                    batch, _ = await anext(follower)
                latencies.append(time.monotonic() - committed)
                assert [r.version for r in batch] == [n + 1]
            await follower.aclose()
    finally:
        await writer_pool.close()
        await reader_pool.close()
    assert max(latencies) < 0.1, latencies
