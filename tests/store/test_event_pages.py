"""Pages of the global order: under concurrent writers, with a transaction
held open, a paging reader sees every committed event exactly once."""

from __future__ import annotations

import asyncio

import asyncpg

from picloud.domain.event_query import After, EventQuery, decode_after, encode_after
from picloud.events import AppCreated, AppUpdated, utcnow
from picloud.store import CommitSignals, EventLog
from picloud.store.event_pages import EventReader


def created(n: int) -> AppCreated:
    return AppCreated(at=utcnow(), app_id=f"a{n}", slug=f"s{n}", name="x")


async def read_everything(
    reader: EventReader, after: After, query: EventQuery, seen: list[int]
) -> After:
    while True:
        page = await reader.page(query, after, limit=7)
        seen.extend(e.position for e in page.events)
        # every page goes through its opaque token, as a client's would
        after = decode_after(encode_after(page.after))
        if page.caught_up:
            return after


async def test_a_paging_reader_under_writers_and_an_open_transaction_sees_all_once(
    event_log: EventLog, pool: asyncpg.Pool
) -> None:
    reader = EventReader(pool, CommitSignals())
    query = EventQuery()
    await event_log.append("early", 0, [created(0)])
    # A transaction takes a position now and holds it open: everything that
    # commits meanwhile has higher positions and must wait behind it.
    held = await pool.acquire()
    tx = held.transaction()
    await tx.start()
    await held.execute(
        "INSERT INTO events (stream, stream_version, type, data)"
        " VALUES ('held', 1, 'app.created.v1', '{}')"
    )
    held_position = await held.fetchval("SELECT max(position) FROM events")

    async def writer(stream: str, count: int) -> None:
        for n in range(count):
            await event_log.append(stream, 2 * n, [created(n), created(n + 1000)])
            await asyncio.sleep(0)

    seen: list[int] = []
    after = After()
    writers = asyncio.gather(*(writer(f"w{w}", 15) for w in range(4)))
    while not writers.done():
        after = await read_everything(reader, after, query, seen)
        await asyncio.sleep(0.005)
    await writers
    after = await read_everything(reader, after, query, seen)
    # Nothing after the held transaction was passed: it holds up the reader.
    assert held_position not in seen
    assert len(seen) == 1
    await tx.commit()
    await pool.release(held)
    await read_everything(reader, after, query, seen)
    everything = [
        r["position"]
        for r in await pool.fetch("SELECT position FROM events ORDER BY txid, position")
    ]
    assert seen == everything  # each once, in the global order
    assert len(seen) == 1 + 1 + 4 * 15 * 2


async def test_filters_narrow_the_read_and_the_cursor_still_reaches_the_end(
    event_log: EventLog, pool: asyncpg.Pool
) -> None:
    reader = EventReader(pool, CommitSignals())
    await event_log.append("a", 0, [created(1), created(2)])
    await event_log.append("b", 0, [created(3)])
    update = AppUpdated(at=utcnow(), app_id="a1", slug="s", name="n")
    await event_log.append("a", 2, [update])
    only_b = await reader.page(EventQuery(streams=("b",)), After(), 10)
    assert [e.stream for e in only_b.events] == ["b"]
    assert only_b.caught_up
    assert only_b.after == await reader.end()  # past the non-matching tail
    updates = await reader.page(EventQuery(types=("app.updated.v1",)), After(), 10)
    assert [e.type for e in updates.events] == ["app.updated.v1"]
    first = (await reader.page(EventQuery(), After(), 1)).events[0]
    above = await reader.page(EventQuery(), After(floor=first.position), 10)
    assert first.position not in [e.position for e in above.events]
    assert len(above.events) == 3
    assert await reader.count(EventQuery(streams=("a",)), After()) == 3
