"""Backup and restore: the log is the truth, so a backup is the log.

A backup is every event (``position``, ``stream``, ``version``, ``type``,
``data``, ``meta``, ``recorded_at``) as gzip'd JSON lines after a header
line, read in one REPEATABLE READ snapshot, so a running server can keep
writing. It is complete, not redacted: password and key hashes and sealed
secrets are in it (the file is its owner's alone); the secrets' key is not.

A restore writes the events, with their positions, into a database whose
log is empty, then rebuilds every projection from them with the live
projection code (``Replay.into_live``) and asks every app to wake once, so
pending deliveries, schedules and TTLs are found again by their folds.
Snapshots, sessions and other state not from the log start empty.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO

import asyncpg
import msgspec

import picloud
from picloud.config import Settings
from picloud.errors import InvalidInput
from picloud.store._errors import translate_errors
from picloud.store._pool import connect
from picloud.store.eventlog import EVENT_COLUMNS, FILL_RUN_COLUMNS
from picloud.store.replay import Replay

__all__ = ["BACKUP_FORMAT", "BackupSummary", "read_backup", "restore", "write_backup"]

BACKUP_FORMAT = "picloud-backup/1"
_BATCH = 5_000


class _Header(msgspec.Struct, frozen=True, kw_only=True):
    format: str
    picloud: str
    created_at: datetime
    events: int
    last_position: int


class _Row(msgspec.Struct, frozen=True, array_like=True):
    position: int
    stream: str
    version: int
    type: str
    data: msgspec.Raw
    meta: msgspec.Raw
    recorded_at: datetime


@dataclass(frozen=True)
class BackupSummary:
    events: int
    last_position: int


_SELECT = """
SELECT position, stream, stream_version, type, data, meta, recorded_at
FROM events WHERE position > $1 ORDER BY position LIMIT $2
"""


async def write_backup(dsn: str, settings: Settings, out: IO[bytes]) -> BackupSummary:
    """Every event of the log, in one snapshot, to ``out`` (gzip'd)."""
    conn = await connect(dsn, settings)
    encode = msgspec.json.Encoder().encode
    try:
        with translate_errors("back up the log"):
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                count, last = await conn.fetchrow(
                    "SELECT count(*), coalesce(max(position), 0) FROM events"
                )
                header = _Header(
                    format=BACKUP_FORMAT,
                    picloud=picloud.__version__,
                    created_at=await conn.fetchval("SELECT now()"),
                    events=count,
                    last_position=last,
                )
                with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6) as gz:
                    gz.write(encode(header) + b"\n")
                    async for rows in _pages(conn):
                        gz.write(b"".join(encode(_row(r)) + b"\n" for r in rows))
    finally:
        await conn.close()
    return BackupSummary(events=count, last_position=last)


async def _pages(conn: asyncpg.Connection) -> AsyncIterator[list[asyncpg.Record]]:
    after = 0
    while rows := await conn.fetch(_SELECT, after, _BATCH):
        yield rows
        after = rows[-1][0]


def _row(r: asyncpg.Record) -> _Row:
    # json and jsonb come as their JSON bytes (store._pool's codecs)
    return _Row(r[0], r[1], r[2], r[3], msgspec.Raw(r[4]), msgspec.Raw(r[5]), r[6])


def read_backup(source: IO[bytes]) -> tuple[_Header, Iterator[_Row]]:
    """The header and the events of a backup file (checked as they are read).

    Raises:
        InvalidInput: not a PiCloud backup, or one of a later format.
    """
    gz = gzip.GzipFile(fileobj=source, mode="rb")
    try:
        header = msgspec.json.decode(gz.readline(), type=_Header)
    except (OSError, EOFError, msgspec.DecodeError, msgspec.ValidationError):
        raise InvalidInput(
            "not a PiCloud backup (picloud backup FILE makes one)"
        ) from None
    if header.format != BACKUP_FORMAT:
        found = header.format
        raise InvalidInput(f"a backup of format {found!r}; we read {BACKUP_FORMAT!r}")
    decode = msgspec.json.Decoder(_Row).decode

    def rows() -> Iterator[_Row]:
        for number, line in enumerate(gz, start=2):
            try:
                yield decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                raise InvalidInput(f"backup line {number}: {e}") from None

    return header, rows()


async def restore(
    dsn: str, settings: Settings, header: _Header, rows: Iterator[_Row]
) -> BackupSummary:
    """Write the backup's events into an empty log, rebuild the projections,
    and wake every app once.

    Raises:
        InvalidInput: the log is not empty, or the backup is cut short.
    """
    conn = await connect(dsn, settings)
    try:
        with translate_errors("restore the log"):
            held = await conn.fetchval("SELECT count(*) FROM events")
            if held:
                raise InvalidInput(
                    f"restore needs an empty database; this one holds {held} events"
                    " (use a new PICLOUD_DATA_DIR or PICLOUD_DATABASE_URL)"
                )
            written, last = await _copy(conn, rows)
    finally:
        await conn.close()
    if written != header.events:
        raise InvalidInput(
            f"the backup is cut short: {written} of {header.events} events"
            " (its events are written; the projections are not)"
        )
    rebuild = await Replay.into_live(dsn, settings)
    try:
        await rebuild.rebuild()
    finally:
        await rebuild.close(keep=True)
    conn = await connect(dsn, settings)
    try:
        with translate_errors("wake the restored apps"):
            await conn.execute(
                "INSERT INTO app_wakeups (app_id, due_at) SELECT id, now() FROM apps"
                " ON CONFLICT (app_id) DO UPDATE SET due_at = now()"
            )
    finally:
        await conn.close()
    return BackupSummary(events=written, last_position=last)


async def _copy(conn: asyncpg.Connection, rows: Iterator[_Row]) -> tuple[int, int]:
    """COPY the events in batches, each in its own transaction (in position
    order, so readers following (txid, position) see them in order)."""
    written = last = 0
    batch: list[tuple[object, ...]] = []
    for row in rows:
        batch.append(
            (
                row.position,
                row.stream,
                row.version,
                row.type,
                bytes(row.data),  # JSON bytes pass through the codecs (_pool)
                bytes(row.meta),
                row.recorded_at,
            )
        )
        last = row.position
        if len(batch) >= _BATCH:
            written += await _copy_batch(conn, batch)
            batch = []
    if batch:
        written += await _copy_batch(conn, batch)
    if written:
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('events', 'position'), $1)", last
        )
    return written, last


async def _copy_batch(conn: asyncpg.Connection, batch: list[tuple[object, ...]]) -> int:
    """COPY one batch in a transaction of its own; how many rows."""
    async with conn.transaction():
        await conn.copy_records_to_table(
            "events",
            records=batch,
            columns=(*EVENT_COLUMNS, "recorded_at"),
        )
        await conn.execute(FILL_RUN_COLUMNS, batch[0][0], batch[-1][0])
    return len(batch)
