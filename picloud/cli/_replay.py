"""``picloud replay``: rebuild every projection from the log and compare.

Rebuilds into a new schema (``--into``, kept; else a scratch schema, dropped
afterwards) with the projection code of the live path (store.replay), then:

- without ``--as-of``: compares each projection table with the live one, as
  of the snapshot the log was read in, and the data with the fold of the log;
- with ``--as-of POSITION``: rebuilds only the events up to that position,
  and compares the KV entries and documents with the fold of the log up to
  there (events.data_state) — what the state as of then must be. Keep it with
  ``--into`` to query it with SQL.

Prints the differences (redacted) and exits non-zero on any. Works against
the configured or embedded database whether or not a server runs.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TextIO

from picloud import event_loop
from picloud.config import Settings
from picloud.errors import NotFound
from picloud.store import Database, migrate
from picloud.store.replay import NOT_FROM_THE_LOG, Replay, TableDiff

__all__ = ["add_replay_command", "replay", "run_replay"]

DatabaseDsn = Callable[[Settings], AbstractContextManager[str]]


def add_replay_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    command = commands.add_parser(
        "replay", help="rebuild the projections from the log and compare them"
    )
    command.add_argument("--app", help="only this app (id or slug)")
    command.add_argument(
        "--as-of", type=int, metavar="POSITION", help="the state as of this position"
    )
    command.add_argument(
        "--into", metavar="SCHEMA", help="rebuild into this new schema and keep it"
    )


def run_replay(
    args: argparse.Namespace, settings: Settings, database: DatabaseDsn
) -> None:
    with database(settings) as dsn:
        same = event_loop.run(
            replay(dsn, settings, app=args.app, as_of=args.as_of, into=args.into)
        )
    if not same:
        sys.exit(1)


async def replay(  # noqa: PLR0913  # the command's options, each named
    dsn: str,
    settings: Settings,
    *,
    app: str | None = None,
    as_of: int | None = None,
    into: str | None = None,
    out: TextIO = sys.stdout,
) -> bool:
    """Run the replay; print what it found to ``out``; True when nothing differs."""
    await migrate(dsn, settings)
    app_id = None if app is None else await _app_id(dsn, settings, app)
    schema = into or f"picloud_replay_{secrets.token_hex(4)}"
    run = await Replay.open(dsn, settings, schema)
    try:
        await run.rebuild(app_id=app_id, upto_position=as_of)
        rate = run.events / max(run.seconds, 1e-9)
        out.write(
            f"replayed {run.events:,} events in {run.seconds:.2f}s"
            f" ({rate:,.0f} events/s) into schema {schema}\n"
        )
        diffs = await run.compare_fold()
        if as_of is None:
            diffs = await run.compare_live(app_id=app_id) + diffs
            against = "the live projections and the fold of the log"
        else:
            against = f"the fold of the log up to position {as_of}"
            _state(run, out)
    finally:
        await run.close(keep=into is not None)
    for diff in diffs:
        _print_diff(diff, out)
    verdict = "differs from" if diffs else "equals"
    out.write(f"the rebuild {verdict} {against}\n")
    skipped = ", ".join(NOT_FROM_THE_LOG)
    out.write(f"(not rebuilt, not from the log: {skipped})\n")
    return not diffs


async def _app_id(dsn: str, settings: Settings, ref: str) -> str:
    db = await Database.open(dsn, settings, init_size=1, max_size=1)
    try:
        record = await db.admin.app(ref)
    finally:
        await db.close()
    if record is None:
        raise NotFound(f"no app {ref[:80]!r}")
    return record.id


def _state(run: Replay, out: TextIO) -> None:
    for app_id, state in sorted(run.folds.items()):
        out.write(
            f"app {app_id}: {len(state.kv):,} KV entries,"
            f" {len(state.docs):,} documents\n"
        )


def _print_diff(diff: TableDiff, out: TextIO) -> None:
    out.write(f"{diff.table}: live {diff.live:,} rows, rebuilt {diff.rebuilt:,}\n")
    for row in diff.only_live:
        out.write(f"  only live:    {row}\n")
    for row in diff.only_rebuilt:
        out.write(f"  only rebuilt: {row}\n")
