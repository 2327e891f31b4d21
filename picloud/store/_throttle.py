"""Login throttling shared by every front-door process (state in Postgres).

Each subject (``user:<name>``, ``addr:<ip>``) may make ``free`` attempts;
every attempt after those blocks the subject for a delay that doubles, up to
:data:`MAX_DELAY_S`. An attempt is counted *before* the password is checked,
in one locked read-modify-write, so parallel guesses cannot slip past the
count. A subject quiet for ``window_s`` starts afresh.

Guarantees:
- :func:`take_attempt` answers 0 (go ahead, counted) or the seconds to wait;
  a blocked attempt is not counted and checks no password.
- The answer does not depend on whether the user exists.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
import msgspec

from picloud.store._errors import translate_errors

__all__ = ["MAX_DELAY_S", "Attempts", "forgive", "step", "take_attempt"]

MAX_DELAY_S = 60.0


class Attempts(msgspec.Struct, frozen=True):
    """One subject's row."""

    attempts: int
    last_attempt_at: datetime
    blocked_until: datetime | None = None


def step(
    row: Attempts | None, *, now: datetime, free: int, window_s: float
) -> tuple[Attempts | None, float]:
    """Pure: the row after an attempt at ``now`` and the seconds to wait.

    A non-zero wait means the attempt is refused and the row is unchanged
    (None returned for "no change").
    """
    if row is not None and row.blocked_until is not None and row.blocked_until > now:
        return None, (row.blocked_until - now).total_seconds()
    quiet = row is None or now - row.last_attempt_at > timedelta(seconds=window_s)
    attempts = 1 if quiet or row is None else row.attempts + 1
    blocked = None
    if attempts > free:
        delay = min(2.0 ** (attempts - free - 1), MAX_DELAY_S)
        blocked = now + timedelta(seconds=delay)
    return Attempts(attempts, now, blocked), 0.0


async def take_attempt(
    pool: asyncpg.Pool, subjects: list[tuple[str, int]], *, window_s: float
) -> float:
    """Count one attempt for every ``(subject, free)``; 0.0 or the seconds to wait."""
    with translate_errors("login throttle"):
        async with pool.acquire() as conn, conn.transaction():
            # Lock in a fixed order so two logins cannot deadlock; read the
            # clock once the locks are held, so the decision is about now.
            rows = {}
            for subject, _ in sorted(subjects):
                rows[subject] = await _locked_row(conn, subject)
            now: datetime = await conn.fetchval("SELECT clock_timestamp()")
            updates: list[tuple[str, Attempts]] = []
            for subject, free in subjects:
                new, wait = step(rows[subject], now=now, free=free, window_s=window_s)
                if new is None:
                    return wait  # refused: no attempt is counted
                updates.append((subject, new))
            for subject, new in updates:
                await conn.execute(
                    "UPDATE login_throttle SET attempts = $2, last_attempt_at = $3,"
                    " blocked_until = $4 WHERE subject = $1",
                    subject,
                    new.attempts,
                    new.last_attempt_at,
                    new.blocked_until,
                )
    return 0.0


async def _locked_row(conn: asyncpg.Connection, subject: str) -> Attempts | None:
    inserted = await conn.fetchval(
        "INSERT INTO login_throttle (subject, attempts, last_attempt_at)"
        " VALUES ($1, 0, clock_timestamp()) ON CONFLICT (subject) DO NOTHING"
        " RETURNING 1",
        subject,
    )
    if inserted:
        return None
    row = await conn.fetchrow(
        "SELECT attempts, last_attempt_at, blocked_until FROM login_throttle"
        " WHERE subject = $1 FOR UPDATE",
        subject,
    )
    return Attempts(row["attempts"], row["last_attempt_at"], row["blocked_until"])


async def forgive(pool: asyncpg.Pool, *, user: str, addr: str) -> None:
    """After a successful login: the user starts afresh; the address gets back
    the attempt it just spent (not more, or signing in to one's own account
    between guesses would reset the address's count)."""
    with translate_errors("login throttle"):
        await pool.execute("DELETE FROM login_throttle WHERE subject = $1", user)
        await pool.execute(
            "UPDATE login_throttle SET attempts = greatest(attempts - 1, 0)"
            " WHERE subject = $1",
            addr,
        )
