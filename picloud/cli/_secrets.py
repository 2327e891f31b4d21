"""``picloud secrets set|list|delete``: apps' secrets without a browser.

Like ``picloud admin``, the commands write the ``system`` stream through a
ControlPlane of their own, straight to the configured (or embedded) database,
whether or not a server runs. ``set`` reads the value from stdin (never from
an argument, which ``ps`` and shell histories would show) and seals it here
with the deployment's key (``PICLOUD_SECRET_KEY``, else the data directory's).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager

from picloud import event_loop
from picloud.actors.control_plane import ControlPlane
from picloud.config import Settings
from picloud.domain.names import SECRET_NAME
from picloud.domain.secret_box import SecretBox
from picloud.domain.secrets import MAX_SECRET_BYTES, DeleteSecret, SetSecret
from picloud.errors import InvalidInput, NotFound
from picloud.events import EventMeta
from picloud.store import Database, migrate, notify_readers

__all__ = ["add_secret_commands", "run_secrets"]

_META = EventMeta(actor="cli")
DatabaseDsn = Callable[[Settings], AbstractContextManager[str]]


def add_secret_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    secrets = commands.add_parser("secrets", help="set, list and delete apps' secrets")
    sub = secrets.add_subparsers(dest="secrets_command", required=True)
    put = sub.add_parser("set", help="set a secret; the value is read from stdin")
    put.add_argument("app", help="the app's slug or id")
    put.add_argument("name")
    listing = sub.add_parser("list", help="the app's secrets (names, never values)")
    listing.add_argument("app")
    delete = sub.add_parser("delete", help="delete a secret")
    delete.add_argument("app")
    delete.add_argument("name")


def run_secrets(
    args: argparse.Namespace, settings: Settings, database: DatabaseDsn
) -> None:
    """Run one ``secrets`` subcommand; raises PiCloudError for the caller."""
    with database(settings) as dsn:
        if args.secrets_command == "list":
            for line in event_loop.run(_list(dsn, settings, args.app)):
                sys.stdout.write(line + "\n")
            return
        name = SECRET_NAME.check(args.name)
        if args.secrets_command == "set":
            value = _read_value()
            event_loop.run(_set(dsn, settings, args.app, name, value))
            sys.stdout.write(f"set secret {name} of {args.app}\n")
        else:
            command = DeleteSecret(app=args.app, name=name)
            event_loop.run(_execute(dsn, settings, command))
            sys.stdout.write(f"deleted secret {name} of {args.app}\n")


def _read_value() -> str:
    if sys.stdin.isatty():
        value = getpass.getpass("value: ")
    else:
        value = sys.stdin.read().removesuffix("\n").removesuffix("\r")
    if len(value.encode()) > MAX_SECRET_BYTES:
        raise InvalidInput(f"a secret holds at most {MAX_SECRET_BYTES} bytes")
    return value


async def _set(dsn: str, settings: Settings, app: str, name: str, value: str) -> None:
    # Here, not at the top: the hosting package imports Ray, and `picloud
    # serve` must set Ray's environment before anything imports it.
    from picloud.hosting.secret_key import with_secret_key  # noqa: PLC0415

    box = SecretBox(with_secret_key(settings).secret_key)
    db = await Database.open(dsn, settings, init_size=1, max_size=2)
    try:
        found = await db.admin.app(app)
    finally:
        await db.close()
    if found is None:
        raise NotFound(f"no app {app[:80]!r}")
    sealed = box.seal(found.id, name, value)
    command = SetSecret(app=found.id, name=name, ciphertext=sealed, key_id=box.key_id)
    await _execute(dsn, settings, command)


async def _execute(
    dsn: str, settings: Settings, command: SetSecret | DeleteSecret
) -> None:
    await migrate(dsn, settings)
    db = await Database.open(dsn, settings, init_size=1, max_size=2)
    try:
        await ControlPlane(db.log).execute(command, _META)
    finally:
        await db.close()
    await notify_readers(dsn, settings)


async def _list(dsn: str, settings: Settings, app: str) -> list[str]:
    await migrate(dsn, settings)
    db = await Database.open(dsn, settings, init_size=1, max_size=2)
    try:
        found = await db.admin.app(app)
        if found is None:
            raise NotFound(f"no app {app[:80]!r}")
        secrets = await db.admin.secrets(found.id)
    finally:
        await db.close()
    return [f"{s.name}\t{s.updated_at.isoformat()}" for s in secrets]
