"""Signalling log readers after commits: in-process at once, across processes
by NOTIFY.

A NOTIFY inside every append would serialise all commits in Postgres
(DESIGN.md), so the appender only pokes :class:`CommitSignals`; one background task
per process turns any number of pokes into one NOTIFY at a time, outside the
append transaction. A LISTEN connection turns other processes' NOTIFYs into
local signals. Readers keep a slow poll as the backstop for anything missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import asyncpg

from picloud.events.topics import ROUTING_EVENT_TYPES

__all__ = ["CHANNEL", "ROUTING_CHANNEL", "CommitSignals", "relay_commit_signals"]

log = logging.getLogger(__name__)

CHANNEL = "picloud_events"
ROUTING_CHANNEL = "picloud_routing"
_RETRY_DELAY = 0.5


class CommitSignals:
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
            self.signal()
        self._outgoing |= channels
        self._announce.set()

    def signal(self) -> None:
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
async def relay_commit_signals(
    signals: CommitSignals, dsn: str, *, listen: bool = True
) -> AsyncIterator[None]:
    """Run the NOTIFY sender (and, with ``listen``, the LISTEN receiver of
    ``signals.channel``) while open. Writers that follow nothing pass
    ``listen=False``, so other processes' commits do not wake them."""
    async with asyncio.TaskGroup() as tasks:
        workers = [
            tasks.create_task(_send_notifies(signals, dsn), name="notify-sender")
        ]
        if listen:
            workers.append(
                tasks.create_task(
                    _receive_notifies(signals, dsn), name="notify-listener"
                )
            )
        try:
            yield
        finally:
            for worker in workers:
                worker.cancel()


async def _send_notifies(signals: CommitSignals, dsn: str) -> None:
    conn: asyncpg.Connection | None = None
    try:
        while True:
            channels = await signals.next_outgoing()
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


async def _receive_notifies(signals: CommitSignals, dsn: str) -> None:
    def on_notify(*_: object) -> None:
        signals.signal()

    while True:
        lost = asyncio.Event()
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(dsn)
            conn.add_termination_listener(lambda _c, done=lost: done.set())
            await conn.add_listener(signals.channel, on_notify)
            signals.signal()  # anything committed while we were not listening
            await lost.wait()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.warning("LISTEN connection failed; retrying", exc_info=True)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)
        await asyncio.sleep(_RETRY_DELAY)
