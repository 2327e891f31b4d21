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
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import asyncpg

from picloud.events.topics import ROUTING_EVENT_TYPES

__all__ = ["CHANNEL", "ROUTING_CHANNEL", "Wakeups", "bridge_to_postgres"]

log = logging.getLogger(__name__)

CHANNEL = "picloud_events"
ROUTING_CHANNEL = "picloud_routing"
_RETRY_DELAY = 0.5


class Wakeups:
    """A generation counter that readers wait on; each relevant commit bumps it.

    ``channel`` is what wakes this process's readers: ``CHANNEL`` (every
    commit) or a narrower one such as ``ROUTING_CHANNEL``. Waiting on a
    generation read *before* the read that found nothing cannot miss a commit
    that happened in between.
    """

    def __init__(self, channel: str = CHANNEL) -> None:
        self.channel = channel
        self.generation = 0
        self._changed = asyncio.Event()
        self._outgoing: set[str] = set()
        self._announce = asyncio.Event()

    def committed(self, types: Iterable[str] = ()) -> None:
        """This process committed events of ``types``: wake the local readers they
        concern and, through NOTIFY, other processes' readers."""
        channels = {CHANNEL}
        if not ROUTING_EVENT_TYPES.isdisjoint(types):
            channels.add(ROUTING_CHANNEL)
        if self.channel in channels:
            self.wake()
        self._outgoing |= channels
        self._announce.set()

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

    async def next_outgoing(self) -> set[str]:
        """The channels of commits not yet announced to other processes."""
        await self._announce.wait()
        self._announce.clear()
        channels, self._outgoing = self._outgoing, set()
        return channels


@asynccontextmanager
async def bridge_to_postgres(
    wakeups: Wakeups, dsn: str, *, listen: bool = True
) -> AsyncIterator[None]:
    """Run the NOTIFY sender (and, with ``listen``, the LISTEN receiver of
    ``wakeups.channel``) while open. Writers that follow nothing pass
    ``listen=False``, so other processes' commits do not wake them."""
    async with asyncio.TaskGroup() as tasks:
        workers = [
            tasks.create_task(_send_notifies(wakeups, dsn), name="notify-sender")
        ]
        if listen:
            workers.append(
                tasks.create_task(
                    _receive_notifies(wakeups, dsn), name="notify-listener"
                )
            )
        try:
            yield
        finally:
            for worker in workers:
                worker.cancel()


async def _send_notifies(wakeups: Wakeups, dsn: str) -> None:
    conn: asyncpg.Connection | None = None
    try:
        while True:
            channels = await wakeups.next_outgoing()
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(dsn)
                for channel in sorted(channels):
                    await conn.execute(f"NOTIFY {channel}")
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
            await conn.add_listener(wakeups.channel, on_notify)
            wakeups.wake()  # anything committed while we were not listening
            await lost.wait()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.warning("LISTEN connection failed; retrying", exc_info=True)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)
        await asyncio.sleep(_RETRY_DELAY)
