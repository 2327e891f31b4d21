"""Waking log readers after commits: in-process at once, across processes by NOTIFY.

A NOTIFY inside every append would serialise all commits in Postgres
(DESIGN.md), so the appender only pokes :class:`Wakeups`; one background task
per process turns any number of pokes into one NOTIFY at a time, outside the
append transaction. A LISTEN connection turns other processes' NOTIFYs into
local wake-ups. Readers keep a slow poll as the backstop for anything missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

__all__ = ["CHANNEL", "Wakeups", "bridge_to_postgres"]

log = logging.getLogger(__name__)

CHANNEL = "picloud_events"
_RETRY_DELAY = 0.5


class Wakeups:
    """A generation counter that readers wait on; each commit bumps it.

    Waiting on a generation read *before* the read that found nothing cannot
    miss a commit that happened in between.
    """

    def __init__(self) -> None:
        self.generation = 0
        self._changed = asyncio.Event()
        self._outgoing = asyncio.Event()

    def committed(self) -> None:
        """This process committed events: wake local readers and other processes."""
        self.wake()
        self._outgoing.set()

    def wake(self) -> None:
        """Something new may be readable: wake the local readers."""
        self.generation += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, seen: int, timeout: float) -> bool:  # noqa: ASYNC109  # a poll period, not a call deadline
        """Wait until the generation moves past ``seen``; False on timeout."""
        if self.generation != seen:
            return True
        changed = self._changed
        try:
            async with asyncio.timeout(timeout):
                await changed.wait()
        except TimeoutError:
            return False
        return True

    async def next_outgoing(self) -> None:
        """Wait for commits not yet announced to other processes."""
        await self._outgoing.wait()
        self._outgoing.clear()


@asynccontextmanager
async def bridge_to_postgres(wakeups: Wakeups, dsn: str) -> AsyncIterator[None]:
    """Run the NOTIFY sender and the LISTEN receiver for ``wakeups`` while open."""
    async with asyncio.TaskGroup() as tasks:
        sender = tasks.create_task(_send_notifies(wakeups, dsn), name="notify-sender")
        receiver = tasks.create_task(
            _receive_notifies(wakeups, dsn), name="notify-listener"
        )
        try:
            yield
        finally:
            sender.cancel()
            receiver.cancel()


async def _send_notifies(wakeups: Wakeups, dsn: str) -> None:
    conn: asyncpg.Connection | None = None
    try:
        while True:
            await wakeups.next_outgoing()
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(dsn)
                await conn.execute(f"NOTIFY {CHANNEL}")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning(
                    "NOTIFY failed; readers fall back to polling", exc_info=True
                )
                conn = None
                await asyncio.sleep(_RETRY_DELAY)
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)


async def _receive_notifies(wakeups: Wakeups, dsn: str) -> None:
    def on_notify(*_: object) -> None:
        wakeups.wake()

    while True:
        lost = asyncio.Event()
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(dsn)
            conn.add_termination_listener(lambda _c, done=lost: done.set())
            await conn.add_listener(CHANNEL, on_notify)
            wakeups.wake()  # anything committed while we were not listening
            await lost.wait()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.warning("LISTEN connection failed; retrying", exc_info=True)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)
        await asyncio.sleep(_RETRY_DELAY)
