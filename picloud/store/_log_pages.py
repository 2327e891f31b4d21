"""Reading the log in large pages, decoded in bulk (the replay's reader).

Per event, a server-side cursor cost more than everything else the replay
did: asyncpg's row iteration and one msgspec call per payload. Here a page
is one keyset query of up to ``page`` rows in the global order, fetched as a
list (asyncpg builds it in C) and its payloads decoded in one msgspec call;
the next page is asked for before this one is decoded, so Postgres reads
while Python decodes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence

import asyncpg
import msgspec

from picloud.errors import UnknownEvent
from picloud.events import (
    Event,
    EventMeta,
    RecordedEvent,
    decode_event,
    decode_events,
)

__all__ = ["log_pages", "recorded_rows"]

_READ = """
SELECT position, txid, stream, stream_version, recorded_at, data
FROM events
WHERE (txid, position) > ($1::xid8, $2::bigint)
  AND type <> ALL($3::text[])
  AND ($4::text[] IS NULL OR stream = ANY($4::text[]))
  AND ($5::bigint IS NULL OR position <= $5)
ORDER BY txid, position
LIMIT $6
"""
_NO_META = EventMeta()  # no projection reads the metadata: it is not decoded


async def log_pages(
    conn: asyncpg.Connection,
    *,
    skip_types: Iterable[str],
    streams: Sequence[str] | None,
    upto_position: int | None,
    page: int,
) -> AsyncIterator[list[RecordedEvent]]:
    """The log in the global order (txid, position), in pages, as ``conn``'s
    transaction sees it; without the types ``skip_types`` (filtered in SQL)."""
    skip = sorted(skip_types)
    wanted = None if streams is None else list(streams)

    def fetch(txid: int, position: int) -> asyncio.Task[list[asyncpg.Record]]:
        return asyncio.ensure_future(
            conn.fetch(_READ, txid, position, skip, wanted, upto_position, page)
        )

    pending: asyncio.Task[list[asyncpg.Record]] | None = fetch(0, 0)
    try:
        while pending is not None:
            rows = await pending
            pending = None
            if len(rows) == page:
                # The keyset of the next page is known now: Postgres reads it
                # while this one is decoded and applied.
                pending = fetch(rows[-1]["txid"], rows[-1]["position"])
            if rows:
                yield recorded_rows(rows)
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)


def recorded_rows(rows: Sequence[asyncpg.Record]) -> list[RecordedEvent]:
    """Rows of ``events`` (position, txid, stream, stream_version,
    recorded_at, data) as recorded events, their payloads decoded in bulk.

    Raises:
        UnknownEvent: a payload this version cannot read, with its position.
    """
    events: Sequence[Event]
    try:
        events = decode_events([row[5] for row in rows])
    except msgspec.DecodeError:
        events = [_decode_one(row) for row in rows]  # names the bad one
    return [
        RecordedEvent(
            position=row[0],
            txid=row[1],
            stream=row[2],
            version=row[3],
            event=event,
            meta=_NO_META,
            recorded_at=row[4],
        )
        for row, event in zip(rows, events, strict=True)
    ]


def _decode_one(row: asyncpg.Record) -> Event:
    try:
        return decode_event(row[5])
    except msgspec.DecodeError as e:
        raise UnknownEvent(row[0], str(e)) from e
