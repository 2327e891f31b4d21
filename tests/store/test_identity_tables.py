"""The login throttle and key-usage tables on a real Postgres, from two pools."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from picloud.config import Settings
from picloud.store._pool import create_pool
from picloud.store._sessions import KeyUsage
from picloud.store._throttle import forgive, take_attempt


@pytest.fixture
async def other_pool(database: str, settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A second pool: another front-door process on the same database."""
    pool = await create_pool(database, settings)
    yield pool
    await pool.close()


async def test_parallel_guesses_from_two_processes_share_one_count(
    pool: asyncpg.Pool, other_pool: asyncpg.Pool
) -> None:
    subjects = [("user:ann", 3), ("addr:10.0.0.1", 100)]
    waits = await asyncio.gather(
        *(take_attempt(p, subjects, window_s=300) for p in [pool, other_pool] * 10)
    )
    # Three free attempts, a fourth that is counted and blocks; the rest wait.
    assert sorted(w == 0 for w in waits) == [False] * 16 + [True] * 4
    assert all(0 < w <= 1 for w in waits if w)
    attempts = await pool.fetchval(
        "SELECT attempts FROM login_throttle WHERE subject = 'user:ann'"
    )
    assert attempts == 4


async def test_an_address_is_blocked_across_usernames_and_forgiven_one_success(
    pool: asyncpg.Pool, other_pool: asyncpg.Pool
) -> None:
    for n in range(4):
        p = pool if n % 2 else other_pool
        assert (
            await take_attempt(p, [(f"user:u{n}", 3), ("addr:a", 4)], window_s=60) == 0
        )
    assert await take_attempt(pool, [("user:u9", 3), ("addr:a", 4)], window_s=60) == 0
    assert await take_attempt(pool, [("user:u8", 3), ("addr:a", 4)], window_s=60) > 0
    await forgive(pool, user="user:u9", addr="addr:a")
    assert (
        await pool.fetchval(
            "SELECT attempts FROM login_throttle WHERE subject = 'addr:a'"
        )
        == 4
    )
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM login_throttle WHERE subject = 'user:u9'"
        )
        == 0
    )


async def test_key_use_is_written_at_most_once_a_minute(
    pool: asyncpg.Pool, other_pool: asyncpg.Pool
) -> None:
    mine, theirs = KeyUsage(), KeyUsage()
    await mine.used(pool, "k1")
    first = await pool.fetchval("SELECT last_used_at FROM api_key_usage")
    await mine.used(pool, "k1")  # the memo skips the write
    await theirs.used(other_pool, "k1")  # the other process's UPSERT changes nothing
    assert await pool.fetchval("SELECT last_used_at FROM api_key_usage") == first
    await pool.execute(
        "UPDATE api_key_usage SET last_used_at = now() - interval '2 min'"
    )
    await theirs.used(other_pool, "k2")
    await KeyUsage().used(other_pool, "k1")
    assert await pool.fetchval(
        "SELECT last_used_at > now() - interval '1 min' FROM api_key_usage"
        " WHERE key_id = 'k1'"
    )
