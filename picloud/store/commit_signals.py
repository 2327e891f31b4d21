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

from picloud.config import Settings
from picloud.errors import StoreError
from picloud.events.topics import ROUTING_EVENT_TYPES
from picloud.store._backoff import Backoff
from picloud.store._errors import translate_errors
from picloud.store._pool import connect

__all__ = [
    "CHANNEL",
    "ROUTING_CHANNEL",
    "ROUTING_ONLY",
    "CommitSignals",
    "relay_commit_signals",
]

log = logging.getLogger(__name__)

CHANNEL = "picloud_events"
ROUTING_CHANNEL = "picloud_routing"
ROUTING_ONLY = frozenset({ROUTING_CHANNEL})
"""What app hosts and the control plane announce: the front doors LISTEN for
routing changes only (the log's tails poll)."""


class CommitSignals:
    """A generation counter that readers wait on; each relevant commit bumps it.

    ``channel`` is what wakes this process's readers: ``CHANNEL`` (every
    commit) or a narrower one such as ``ROUTING_CHANNEL``. Waiting on a
    generation read *before* the read that found nothing cannot miss a commit
    that happened in between.
    """

    def __init__(
        self,
        channel: str = CHANNEL,
        *,
        announced: frozenset[str] = frozenset({CHANNEL, ROUTING_CHANNEL}),
    ) -> None:
        """``announced``: the channels this process NOTIFYs others on. A
        NOTIFY nobody LISTENs to still costs the sender a round trip and
        Postgres its work, at every commit when commits do not batch."""
        self.channel = channel
        self._announced = announced
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
        outgoing = channels & self._announced
        if outgoing:
            self._outgoing |= outgoing
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
    signals: CommitSignals, dsn: str, settings: Settings, *, listen: bool = True
) -> AsyncIterator[None]:
    """Run the NOTIFY sender (and, with ``listen``, the LISTEN receiver of
    ``signals.channel``) while open. Writers that follow nothing pass
    ``listen=False``, so other processes' commits do not wake them.

    Neither holds a connection for long: the sender closes its own when idle
    and the receiver replaces its own every ``db_connection_max_age_s``, so
    Postgres can finish a smart shutdown; while either is down (an outage),
    readers fall back to their poll and the connection is retried with
    back-off.
    """
    async with asyncio.TaskGroup() as tasks:
        workers = [
            tasks.create_task(
                _Sender(signals, dsn, settings).run(), name="notify-sender"
            )
        ]
        if listen:
            workers.append(
                tasks.create_task(
                    _receive_notifies(signals, dsn, settings), name="notify-listener"
                )
            )
        try:
            yield
        finally:
            for worker in workers:
                worker.cancel()


class _Sender:
    """Turns the pokes of local commits into NOTIFYs, one connection at a time."""

    def __init__(self, signals: CommitSignals, dsn: str, settings: Settings) -> None:
        self._signals = signals
        self._dsn = dsn
        self._settings = settings
        self._conn: asyncpg.Connection | None = None
        self._opened = 0.0

    async def run(self) -> None:
        idle_s = self._settings.db_idle_connection_ms / 1000
        backoff = Backoff()
        try:
            while True:
                try:
                    async with asyncio.timeout(None if self._conn is None else idle_s):
                        channels = await self._signals.next_outgoing()
                except TimeoutError:
                    await self._close()  # idle: nothing may hold up a shutdown
                    continue
                try:
                    await self._notify(channels)
                except StoreError as e:
                    await self._close()
                    delay = backoff.next()
                    if backoff.failures == 1:
                        log.warning("NOTIFY failed (%s); readers poll meanwhile", e)
                    await asyncio.sleep(delay)
                else:
                    backoff.reset()
        finally:
            await self._close()

    async def _notify(self, channels: set[str]) -> None:
        now = asyncio.get_running_loop().time()
        if self._conn is not None and (
            self._conn.is_closed()
            or now - self._opened > self._settings.db_connection_max_age_s
        ):
            await self._close()
        if self._conn is None:
            self._conn = await connect(self._dsn, self._settings)
            self._opened = now
        with translate_errors("notify"):
            for channel in sorted(channels):
                await self._conn.execute(f"NOTIFY {channel}")

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        await _close(conn)


async def _receive_notifies(
    signals: CommitSignals, dsn: str, settings: Settings
) -> None:
    backoff = Backoff()
    while True:
        conn: asyncpg.Connection | None = None
        delay = 0.0
        try:
            conn = await connect(dsn, settings)
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, done=lost: done.set())
            with translate_errors("listen"):
                await conn.add_listener(signals.channel, lambda *_: signals.signal())
            if backoff.failures:
                log.info("LISTEN connection restored")
            backoff.reset()
            signals.signal()  # anything committed while we were not listening
            # Replaced now and then: in a smart shutdown the next connection is
            # refused, and this one must not keep Postgres waiting.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(settings.db_connection_max_age_s):
                    await lost.wait()
                    delay = backoff.next()  # lost, not replaced: pause first
        except StoreError as e:
            delay = backoff.next()
            if backoff.failures == 1:
                log.warning("LISTEN failed (%s); readers poll until it is back", e)
        finally:
            await _close(conn)
        await asyncio.sleep(delay)


async def _close(conn: asyncpg.Connection | None) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):  # it may be broken already
            await conn.close(timeout=1)
