"""``picloud backup FILE`` / ``picloud restore FILE``: the log, to a file and
back (store.backup). Like ``picloud events``, they work against the
configured or embedded database whether or not a server runs; a restore
wants an empty database (a new data dir) and no server on it yet."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from picloud import event_loop
from picloud.config import Settings
from picloud.errors import InvalidInput
from picloud.store import migrate
from picloud.store.backup import read_backup, restore, write_backup

__all__ = ["add_backup_commands", "run_backup"]

DatabaseDsn = Callable[[Settings], AbstractContextManager[str]]


def add_backup_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    backup = commands.add_parser(
        "backup", help="write the whole event log to FILE (gzip'd JSON lines)"
    )
    backup.add_argument("file", type=Path)
    restore_command = commands.add_parser(
        "restore", help="replay a backup into an empty database"
    )
    restore_command.add_argument("file", type=Path)


def run_backup(
    args: argparse.Namespace, settings: Settings, database: DatabaseDsn
) -> None:
    with database(settings) as dsn:
        event_loop.run(migrate(dsn, settings))
        if args.command == "backup":
            _backup(dsn, settings, args.file)
        else:
            _restore(dsn, settings, args.file)


def _backup(dsn: str, settings: Settings, file: Path) -> None:
    # The owner's alone: password hashes and sealed secrets are in it.
    partial = file.with_name(file.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            summary = event_loop.run(write_backup(dsn, settings, out))
        partial.replace(file)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    sys.stdout.write(
        f"backed up {summary.events} events (to position {summary.last_position})"
        f" to {file}\n"
        "secrets in it are sealed: a restore elsewhere needs the same"
        " PICLOUD_SECRET_KEY (or the data dir's secret.key)\n"
    )


def _restore(dsn: str, settings: Settings, file: Path) -> None:
    try:
        source = file.open("rb")
    except OSError as e:
        raise InvalidInput(f"cannot read {file}: {e.strerror}") from None
    with source:
        header, rows = read_backup(source)
        summary = event_loop.run(restore(dsn, settings, header, rows))
    sys.stdout.write(
        f"restored {summary.events} events (to position {summary.last_position});"
        " projections rebuilt from them\n"
    )
