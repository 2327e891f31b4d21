"""``picloud admin users|members|keys list|add|remove``: identity without a
browser, against the configured or embedded database (server running or not).

Changes go through a ControlPlane of the CLI's own, as every other admin
command; lists read the projections. Output is one tab-separated line per
thing, ids first, so scripts can cut them.
"""

from __future__ import annotations

import argparse
import sys

from picloud.domain.access import Role
from picloud.domain.identity import (
    DeleteUser,
    RemoveMember,
    RevokeApiKey,
    SetMember,
)
from picloud.domain.system import SystemCommand
from picloud.errors import NotFound
from picloud.events import rfc3339
from picloud.store import AdminStore

__all__ = ["add_identity_commands", "identity_command", "list_identity", "say"]


def add_identity_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    users = sub.add_parser("users", help="list, add or remove users")
    verbs = users.add_subparsers(dest="verb", required=True)
    verbs.add_parser("list", help="every user")
    add = verbs.add_parser("add", help="a user; the password is read from stdin")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="an instance admin")
    verbs.add_parser("remove", help="delete a user").add_argument("user")

    members = sub.add_parser("members", help="list, add or remove an app's members")
    verbs = members.add_subparsers(dest="verb", required=True)
    verbs.add_parser("list", help="an app's members").add_argument("app")
    add = verbs.add_parser("add", help="give a user a role in an app (or change it)")
    add.add_argument("app")
    add.add_argument("user")
    add.add_argument("role", choices=[r.value for r in Role])
    remove = verbs.add_parser("remove", help="take a user's role in an app away")
    remove.add_argument("app")
    remove.add_argument("user")


def identity_command(args: argparse.Namespace) -> SystemCommand:
    """The change ``args`` asks for (adding users and keys: see _admin)."""
    match args.admin_command, args.verb:
        case "users", "remove":
            return DeleteUser(user=args.user)
        case "members", "add":
            return SetMember(app=args.app, user=args.user, role=Role(args.role))
        case "members", "remove":
            return RemoveMember(app=args.app, user=args.user)
        case "keys", "remove":
            return RevokeApiKey(key=args.key_id)
    raise ValueError(f"not a change: {args.admin_command} {args.verb}")


async def list_identity(args: argparse.Namespace, store: AdminStore) -> list[str]:
    """The lines of a ``list``."""
    if args.admin_command == "users":
        return [
            f"{u.id}\t{u.username}\t{'admin' if u.admin else 'user'}\t"
            f"{rfc3339(u.created_at)}"
            for u in await store.users()
        ]
    if args.admin_command == "members":
        app = await store.app(args.app)
        if app is None:
            raise NotFound(f"no app {args.app[:80]!r}")
        return [
            f"{m.user_id}\t{m.username}\t{m.role}" for m in await store.members(app.id)
        ]
    users = await store.users()
    if args.user is not None:
        users = [u for u in users if args.user in (u.id, u.username)]
        if not users:
            raise NotFound(f"no user {args.user[:80]!r}")
    lines = []
    for user in users:
        for k in await store.keys(user.id):
            state = "revoked" if k.revoked_at else "active"
            lines.append(
                f"{k.id}\t{user.username}\t{k.name}\t{k.prefix}…\t{' '.join(k.scopes)}"
                f"\t{k.app_id or '-'}\t{state}"
            )
    return lines


def say(lines: list[str]) -> None:
    sys.stdout.write("".join(line + "\n" for line in lines))
