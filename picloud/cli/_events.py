"""``picloud events``: the event log, exported for analysts.

It reads the configured (or embedded) database directly, so it works
whether or not a server runs, in the global order with the cursor of the
events API and through the same reader (store.event_pages), hence the same
redaction. JSONL goes to stdout (or ``-o``), one event per line with the API's
fields; Parquet (``-o`` required) has one column per field — ``data`` and
``meta`` as JSON text — so DuckDB and pandas read it as it is
(``SELECT data->>'key' FROM 'events.parquet'``). A long export shows its
progress on stderr, and ends by saying how to go on from where it stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any

import msgspec

from picloud import event_loop
from picloud.cli._progress import Progress
from picloud.config import Settings
from picloud.domain.event_query import (
    After,
    EventQuery,
    decode_after,
    encode_after,
    parse_time,
    parse_types,
)
from picloud.domain.records import EventRecord
from picloud.errors import InvalidInput, NotFound
from picloud.events import event_types
from picloud.store import Database, migrate

__all__ = ["add_events_command", "run_events"]

DatabaseDsn = Callable[[Settings], AbstractContextManager[str]]
_BATCH = 5_000


def add_events_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    events = commands.add_parser(
        "events", help="export the event log (JSONL or Parquet), or follow it"
    )
    events.add_argument("--app", help="only this app's stream (id or slug)")
    events.add_argument("--stream", help="only this stream (system, app-ID)")
    events.add_argument(
        "--type", action="append", default=[], help="only these types (repeatable)"
    )
    events.add_argument(
        "--after",
        help="a position (the events above it) or the token an export ended with",
    )
    events.add_argument("--since", help="committed at or after: ISO time or 15m, 2h")
    events.add_argument("--until", help="committed before: ISO time or 15m, 2h")
    events.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl")
    events.add_argument(
        "--follow", action="store_true", help="keep following new events (JSONL)"
    )
    events.add_argument("-o", "--output", help="write here instead of stdout")


def run_events(
    args: argparse.Namespace, settings: Settings, database: DatabaseDsn
) -> None:
    """Run ``picloud events``; raises PiCloudError for the caller to report."""
    if args.format == "parquet" and (args.output is None or args.follow):
        raise InvalidInput(
            "Parquet needs -o FILE and no --follow (a Parquet file is complete"
            " only once closed); follow as JSONL"
        )
    query = EventQuery(
        streams=None if args.stream is None else (args.stream,),
        types=parse_types(args.type, set(event_types())),
        since=None if args.since is None else parse_time(args.since),
        until=None if args.until is None else parse_time(args.until),
    )
    after = decode_after(args.after)
    with (
        database(settings) as dsn,
        _sink(args) as sink,
        contextlib.suppress(KeyboardInterrupt),  # Ctrl-C ends a --follow
    ):
        export = _export(dsn, settings, args=args, query=query, after=after, sink=sink)
        after = event_loop.run(export)
    sys.stderr.write(f"picloud: go on from here with --after {encode_after(after)}\n")


async def _export(  # noqa: PLR0913  # the command's parts, each named
    dsn: str,
    settings: Settings,
    *,
    args: argparse.Namespace,
    query: EventQuery,
    after: After,
    sink: _Sink,
) -> After:
    await migrate(dsn, settings)
    db = await Database.open(dsn, settings, init_size=1, max_size=2)
    try:
        if args.app is not None:
            app = await db.admin.app(args.app)
            if app is None:
                raise NotFound(f"no app {args.app[:80]!r}")
            query = msgspec.structs.replace(query, streams=(f"app-{app.id}",))
        total = None if args.follow else await db.events.count(query, after)
        progress = Progress(sys.stderr, total=total)
        poll_s = settings.events_tail_poll_ms / 1000
        pages = db.events.follow(query, after, limit=_BATCH, poll_s=poll_s)
        async for page in pages:
            sink.write(page.events)
            progress.advance(len(page.events))
            after = page.after
            if page.caught_up and not args.follow:
                break
        progress.finish()
    finally:
        await db.close()
    return after


class _Sink:
    """Where the events go: JSONL lines or Parquet row groups."""

    def __init__(self, out: IO[bytes], parquet: Any = None) -> None:
        self._out = out
        self._parquet = parquet

    def write(self, events: list[EventRecord]) -> None:
        if self._parquet is not None:
            if events:
                self._parquet.write(events)
            return
        encode = msgspec.json.encode
        self._out.write(b"".join(encode(e) + b"\n" for e in events))
        self._out.flush()


@contextlib.contextmanager
def _sink(args: argparse.Namespace) -> Iterator[_Sink]:
    if args.format == "parquet":
        from picloud.cli._parquet import ParquetEvents  # noqa: PLC0415  # pyarrow is slow to import

        with ParquetEvents(Path(args.output)) as parquet:
            yield _Sink(sys.stdout.buffer, parquet)
        return
    if args.output is None:
        yield _Sink(sys.stdout.buffer)
        return
    with open(args.output, "wb") as out:
        yield _Sink(out)
