"""The registry of live app hosts on a real Postgres."""

from __future__ import annotations

import asyncpg

from picloud.store import HostRegistry, HostRow

A0 = HostRow("picloud-host-aaaa-0", "aaaa", "10.0.0.1", 4100)
B0 = HostRow("picloud-host-bbbb-0", "bbbb", "10.0.0.2", 4200)


async def test_a_beat_records_the_host_and_answers_every_live_one(
    pool: asyncpg.Pool,
) -> None:
    registry = HostRegistry(pool)
    assert await registry.beat(A0, timeout_s=2.0) == [A0]
    assert sorted(await registry.beat(B0, timeout_s=2.0), key=str) == [A0, B0]
    moved = HostRow(A0.name, A0.node_id, A0.host, 4101)  # restarted: a new port
    assert moved in await registry.beat(moved, timeout_s=2.0)
    assert sorted(await registry.alive(timeout_s=2.0), key=str) == [moved, B0]


async def test_a_silent_host_is_no_longer_alive_and_one_that_left_at_once(
    pool: asyncpg.Pool,
) -> None:
    registry = HostRegistry(pool)
    await registry.beat(A0, timeout_s=2.0)
    await registry.beat(B0, timeout_s=2.0)
    await pool.execute(
        "UPDATE app_hosts SET beat_at = now() - interval '3 seconds' WHERE name = $1",
        B0.name,
    )
    assert await registry.alive(timeout_s=2.0) == [A0]
    assert await registry.beat(A0, timeout_s=2.0) == [A0]
    await registry.leave(A0.name)
    assert await registry.alive(timeout_s=2.0) == []
    await registry.forget_older_than(1.0)  # B0's row, silent for 3 s
    assert await pool.fetchval("SELECT count(*) FROM app_hosts") == 0


async def test_a_silent_host_whose_node_beats_is_alive_ray_restarts_it(
    pool: asyncpg.Pool,
) -> None:
    registry = HostRegistry(pool)
    sibling = HostRow("picloud-host-aaaa-1", "aaaa", "10.0.0.1", 4101)
    for row in (A0, sibling, B0):
        await registry.beat(row, timeout_s=2.0)
    await pool.execute(
        "UPDATE app_hosts SET beat_at = now() - interval '3 seconds' WHERE name <> $1",
        A0.name,
    )
    # aaaa-1 fell silent but aaaa-0 beats: node aaaa is alive, and so is it.
    assert sorted(await registry.alive(timeout_s=2.0), key=str) == [A0, sibling]
    assert sorted(await registry.beat(A0, timeout_s=2.0), key=str) == [A0, sibling]
