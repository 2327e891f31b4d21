"""``picloud admin …``: set-up without a browser (SPEC.md §9).

The commands write the ``system`` stream through a ControlPlane of their own,
straight to the configured (or embedded) database, so they work whether or
not a server runs: a running server's ControlPlane catches up on the stream
before each command it decides. Passwords are read from stdin and hashed
here; only the hash is written. ``create-key`` prints only the key.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from picloud import event_loop
from picloud.actors.control_plane import ControlPlane
from picloud.cli._identity import (
    add_identity_commands,
    identity_command,
    list_identity,
    say,
)
from picloud.config import Settings
from picloud.domain.access import ALL_SCOPES, Scope
from picloud.domain.credentials import check_password, hash_password, new_api_key
from picloud.domain.identity import CreateApiKey, CreateUser, RevokeApiKey
from picloud.domain.system import SystemCommand, answer
from picloud.errors import InvalidInput
from picloud.events import EventMeta
from picloud.store import AdminStore, Database, migrate, notify_readers

if TYPE_CHECKING:
    from picloud.domain.system import Answer

__all__ = ["FIRST_ADMIN_HINT", "add_admin_commands", "run_admin", "warn_if_no_admin"]

FIRST_ADMIN_HINT = (
    "no admin user exists yet; create one with: "
    "picloud admin create-user NAME --admin (it reads the password from stdin)"
)
_META = EventMeta(actor="cli")

DatabaseDsn = Callable[[Settings], AbstractContextManager[str]]


def add_admin_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    admin = commands.add_parser("admin", help="users, members and API keys")
    sub = admin.add_subparsers(dest="admin_command", required=True)
    user = sub.add_parser(
        "create-user", help="create a user; the password is read from stdin"
    )
    user.add_argument("name")
    user.add_argument("--admin", action="store_true", help="an instance admin")
    _key_options(
        sub.add_parser("create-key", help="create an API key; prints only the key")
    )
    revoke = sub.add_parser("revoke-key", help="revoke an API key by its id")
    revoke.add_argument("key_id")
    add_identity_commands(sub)
    keys = sub.add_parser("keys", help="list, add or remove API keys")
    verbs = keys.add_subparsers(dest="verb", required=True)
    verbs.add_parser("list", help="keys (of one user)").add_argument("--user")
    _key_options(verbs.add_parser("add", help="an API key; prints only the key"))
    verbs.add_parser("remove", help="revoke a key by its id").add_argument("key_id")


def _key_options(key: argparse.ArgumentParser) -> None:
    key.add_argument("--user", required=True, help="the key's user (name or id)")
    key.add_argument("--name", required=True, help="a label to tell keys apart")
    which = key.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--scopes",
        nargs="+",
        metavar="SCOPE",
        help="scopes, space- or comma-separated: "
        + " ".join(sorted(Scope))
        + " (admin: manage users and members; never part of --all)",
    )
    which.add_argument("--all", action="store_true", help="every scope but admin")
    key.add_argument("--app", help="bind the key to this app (id or slug)")


def run_admin(
    args: argparse.Namespace, settings: Settings, database: DatabaseDsn
) -> None:
    """Run one ``admin`` subcommand; raises PiCloudError for the caller to report."""
    verb = getattr(args, "verb", None)
    if verb == "list":
        with database(settings) as dsn:
            say(event_loop.run(_list(dsn, settings, args)))
        return
    command, secret = _command(args)
    with database(settings) as dsn:
        result = event_loop.run(_execute(dsn, settings, command))
    match command:
        case CreateApiKey():
            _say(secret)  # stdout holds the key alone: KEY=$(picloud admin ...)
            key_id = getattr(result, "id", "?")
            sys.stderr.write(
                f"created key {key_id} (revoke it: picloud admin keys remove"
                f" {key_id})\n"
            )
        case CreateUser(username=name, admin=is_admin):
            kind = "admin" if is_admin else "user"
            _say(f"created {kind} {name.lower()} ({getattr(result, 'id', '?')})")
        case RevokeApiKey(key=key_id):
            _say(f"revoked key {key_id}")
        case _:
            _say(f"done: {type(command).__name__}")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def _command(args: argparse.Namespace) -> tuple[SystemCommand, str]:
    """The command, and the key's secret for a new key (else "")."""
    kind = args.admin_command
    verb = getattr(args, "verb", None)
    if kind == "create-user" or (kind, verb) == ("users", "add"):
        password = _read_password()
        check_password(password)
        return CreateUser(
            username=args.name, password_hash=hash_password(password), admin=args.admin
        ), ""
    if kind == "create-key" or (kind, verb) == ("keys", "add"):
        return _new_key(args)
    if kind == "revoke-key":
        return RevokeApiKey(key=args.key_id), ""
    return identity_command(args), ""


def _new_key(args: argparse.Namespace) -> tuple[CreateApiKey, str]:
    scopes = (
        sorted(ALL_SCOPES)
        if args.all
        else [s for part in args.scopes for s in part.split(",") if s]
    )
    made = new_api_key()
    command = CreateApiKey(
        user=args.user,
        name=args.name,
        prefix=made.prefix,
        secret_hash=made.hash,
        scopes=tuple(scopes),
        app=args.app,
    )
    return command, made.secret


async def _list(dsn: str, settings: Settings, args: argparse.Namespace) -> list[str]:
    await migrate(dsn, settings)
    db = await Database.open(dsn, settings, init_size=1, max_size=2)
    try:
        return await list_identity(args, db.admin)
    finally:
        await db.close()


def _read_password() -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise InvalidInput("the passwords differ")
        return password
    return sys.stdin.readline().rstrip("\r\n")


async def _execute(dsn: str, settings: Settings, command: SystemCommand) -> Answer:
    await migrate(dsn, settings)
    db = await Database.open(dsn, settings, init_size=1, max_size=2)
    try:
        plane = ControlPlane(db.log)
        recorded = await plane.execute(command, _META)
        result = answer(plane.state, command, recorded)
    finally:
        await db.close()
    await notify_readers(dsn, settings)
    return result


async def warn_if_no_admin(store: AdminStore, warn: Callable[[str], None]) -> None:
    """Tell the operator how to create the first admin (never a default password)."""
    if not await store.admin_exists():
        warn(FIRST_ADMIN_HINT)
