"""Pages of the global order for readers outside PiCloud: the events API, its
live tail and ``picloud events``.

Guarantees:
- Order and cursor are DESIGN.md's: ``(txid, position)`` below the oldest
  running transaction. Reading on from a page's ``after`` never skips an
  event that commits late with a lower position, and never repeats one, while
  writers commit (and while one holds a transaction open: the reader waits
  for it instead of passing it).
- The filters narrow the scan in SQL (a page holds up to ``limit`` matching
  events); a page short of ``limit`` has read up to the end of the committed
  log, and its cursor is moved to that end (read in the same snapshot), so the
  next read does not scan the non-matching events again.
- Every event leaves through :func:`picloud.domain.redaction.public_json`.
- Payloads are not decoded into event types: an event a newer PiCloud wrote
  is exported as it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import asyncpg
import msgspec

from picloud.domain.event_query import After, EventQuery
from picloud.domain.records import EventRecord
from picloud.domain.redaction import CREDENTIAL_HEADERS, public_json
from picloud.store._errors import translate_errors
from picloud.store.commit_signals import CommitSignals

__all__ = ["EventPage", "EventReader"]

_FILTER = """
      AND txid < pg_snapshot_xmin(pg_current_snapshot())
      AND ($3::text[] IS NULL OR stream = ANY($3::text[]))
      AND ($4::text[] IS NULL OR type = ANY($4::text[]))
      AND ($5::timestamptz IS NULL OR recorded_at >= $5)
      AND ($6::timestamptz IS NULL OR recorded_at < $6)
      AND ($7::bigint IS NULL OR position > $7)
      AND ($8::bigint IS NULL OR position <= $8)
"""
_PAGE = (
    """
SELECT position, txid, stream, stream_version, type, data, meta, recorded_at
FROM events
WHERE (txid, position) > ($1::xid8, $2::bigint)"""
    + _FILTER
    + "ORDER BY txid, position LIMIT $9"
)
_COUNT = (
    """
SELECT count(*) FROM events
WHERE (txid, position) > ($1::xid8, $2::bigint)"""
    + _FILTER
)
_HORIZON = """
SELECT txid, position FROM events
WHERE txid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY txid DESC, position DESC LIMIT 1
"""
# Where a read above a position starts: the oldest transaction holding such
# an event, or the oldest running one (which may hold one, to commit later).
_START_ABOVE = """
SELECT least(min(txid), pg_snapshot_xmin(pg_current_snapshot()))
FROM events WHERE position > $1
"""


class EventPage(NamedTuple):
    """Matching events in the global order, where to read on from, and whether
    the read reached the end of the committed log."""

    events: list[EventRecord]
    after: After
    caught_up: bool
    places: list[After]
    """Where to read on from after each event (a live tail's event ids)."""


class EventReader:
    """Reads pages of the global order (see the module docstring)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        signals: CommitSignals,
        headers: frozenset[str] = CREDENTIAL_HEADERS,
    ) -> None:
        """``headers``: the credential headers redaction removes."""
        self._pool = pool
        self._signals = signals
        self._headers = headers

    async def page(self, query: EventQuery, after: After, limit: int) -> EventPage:
        """Up to ``limit`` events matching ``query`` after ``after``."""
        with translate_errors("read events"):
            async with (
                self._pool.acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                after = await self._start(conn, after)
                rows = await conn.fetch(_PAGE, *_args(query, after), limit)
                horizon = None
                if len(rows) < limit:  # the same snapshot: nothing in between
                    horizon = await conn.fetchrow(_HORIZON)
        if rows:
            last = rows[-1]
            after = After(last["txid"], last["position"], after.floor)
        if horizon is not None and (horizon["txid"], horizon["position"]) > (
            after.txid,
            after.position,
        ):
            after = After(horizon["txid"], horizon["position"], after.floor)
        records = [self._record(row) for row in rows]
        places = [After(r["txid"], r["position"], after.floor) for r in rows]
        if places:
            places[-1] = after  # the page's last place is past what it skipped
        return EventPage(records, after, len(rows) < limit, places)

    async def end(self) -> After:
        """The place after every committed event (a tail that starts now)."""
        with translate_errors("read events"):
            row = await self._pool.fetchrow(_HORIZON)
        return After() if row is None else After(row["txid"], row["position"])

    async def count(self, query: EventQuery, after: After) -> int:
        """How many committed events a read from ``after`` would give now."""
        with translate_errors("count events"):
            async with self._pool.acquire() as conn:
                after = await self._start(conn, after)
                found: int = await conn.fetchval(_COUNT, *_args(query, after))
        return found

    async def follow(
        self, query: EventQuery, after: After, *, limit: int, poll_s: float
    ) -> AsyncIterator[EventPage]:
        """Pages forever: each batch of new events as it commits, and an empty
        page after each wait that found nothing (for a caller's heartbeat).

        Woken by this process's commits and at least every ``poll_s``.
        """
        while True:
            seen = self._signals.generation
            page = await self.page(query, after, limit)
            after = page.after
            yield page
            if page.caught_up:
                await self._signals.wait(seen, timeout=poll_s)

    async def _start(self, conn: asyncpg.Connection, after: After) -> After:
        """A read above a plain position starts at the cursor that holds every
        such event (the position filter does the rest)."""
        if after.floor is None or (after.txid, after.position) != (0, 0):
            return after
        txid = await conn.fetchval(_START_ABOVE, after.floor)
        return After(int(txid), 0, after.floor)

    def _record(self, row: asyncpg.Record) -> EventRecord:
        return EventRecord(
            position=row["position"],
            stream=row["stream"],
            version=row["stream_version"],
            type=row["type"],
            data=msgspec.Raw(public_json(row["data"], self._headers)),
            meta=msgspec.Raw(public_json(row["meta"], self._headers)),
            recorded_at=row["recorded_at"],
        )


def _args(query: EventQuery, after: After) -> list[Any]:
    floor = after.floor
    if query.after_position is not None:
        floor = max(floor or 0, query.after_position)
    return [
        after.txid,
        after.position,
        None if query.streams is None else list(query.streams),
        None if query.types is None else list(query.types),
        query.since,
        query.until,
        floor,
        query.upto_position,
    ]
