"""``picloud deploy|pull|rollback|apps|scripts``: apps as folders, by name.

These talk to a running server's admin API (``PICLOUD_URL``,
``PICLOUD_API_KEY``; see ``_http_client``). A deploy is one change set on the
server: the diff is asked for first (a dry run), printed, then applied in
one batch of events — all or nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from picloud import event_loop
from picloud.cli._http_client import AdminClient, admin_client
from picloud.cli._manifest import read_folder, write_folder
from picloud.config import Settings
from picloud.errors import NotFound

__all__ = ["CLIENT_COMMANDS", "add_client_commands", "run_client_command"]

CLIENT_COMMANDS = frozenset({"deploy", "pull", "rollback", "apps", "scripts"})
_MARK = {"create": "+", "update": "~", "delete": "-"}


def add_client_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    deploy = commands.add_parser(
        "deploy", help="apply a folder of .lua files and picloud.toml to an app"
    )
    deploy.add_argument("folder", type=Path)
    deploy.add_argument("--app", help="the app's slug or id (else picloud.toml's)")
    deploy.add_argument(
        "--dry-run", action="store_true", help="print what would change, change nothing"
    )
    pull = commands.add_parser("pull", help="write a live app as a deploy folder")
    pull.add_argument("app", help="the app's slug or id")
    pull.add_argument("folder", type=Path)
    pull.add_argument(
        "--replace",
        action="store_true",
        help="remove the folder's .lua files of scripts the app does not have",
    )
    rollback = commands.add_parser(
        "rollback", help="save an earlier version of a script as its next version"
    )
    rollback.add_argument("app")
    rollback.add_argument("script", help="the script's name")
    rollback.add_argument("version", type=int)
    apps = commands.add_parser("apps", help="the apps you can see")
    apps.add_subparsers(dest="apps_command", required=True).add_parser("list")
    scripts = commands.add_parser("scripts", help="an app's scripts")
    sub = scripts.add_subparsers(dest="scripts_command", required=True)
    sub.add_parser("list").add_argument("app")
    versions = sub.add_parser("versions", help="a script's saved versions")
    versions.add_argument("app")
    versions.add_argument("script", help="the script's name")


def run_client_command(args: argparse.Namespace, settings: Settings) -> None:
    """Run one command against the server; raises PiCloudError for the caller."""
    for line in event_loop.run(_run(args, settings)):
        sys.stdout.write(line + "\n")


async def _run(args: argparse.Namespace, settings: Settings) -> list[str]:
    async with admin_client(settings) as api:
        match args.command:
            case "deploy":
                return await _deploy(api, args.folder, args.app, dry_run=args.dry_run)
            case "pull":
                return await _pull(api, args.app, args.folder, replace=args.replace)
            case "rollback":
                return await _rollback(api, args.app, args.script, args.version)
            case "apps":
                return await _apps(api)
            case "scripts" if args.scripts_command == "list":
                return await _scripts(api, args.app)
            case _:
                return await _versions(api, args.app, args.script)


def _app_path(app: str) -> str:
    return f"/api/v1/admin/apps/{quote(app, safe='')}"


async def _deploy(
    api: AdminClient, folder: Path, app: str | None, *, dry_run: bool
) -> list[str]:
    app, body = read_folder(folder, app)
    path = _app_path(app) + "/deploy"
    planned = await api.post(path, body | {"dry_run": True})
    changes = planned["changes"]
    lines = [f"{_MARK[c['action']]} {c['what']} {c['name']}" for c in changes]
    if not changes:
        return [*lines, f"{app}: nothing to change"]
    if dry_run:
        return [*lines, f"{app}: {len(changes)} changes (dry run: none applied)"]
    done = await api.post(path, body | {"dry_run": False})
    applied = len(done["changes"])
    return [*lines, f"{app}: {applied} changes applied as one change set"]


async def _pull(
    api: AdminClient, app: str, folder: Path, *, replace: bool
) -> list[str]:
    base = _app_path(app)
    record = await api.get(base)
    scripts = (await api.get(base + "/scripts"))["items"]
    routes = (await api.get(base + "/routes"))["items"]
    triggers = (await api.get(base + "/triggers"))["items"]
    settings = await api.get(base + "/settings")
    written = write_folder(
        folder,
        app=record["slug"],
        scripts=scripts,
        routes=routes,
        triggers=triggers,
        cors=settings.get("cors"),
        replace=replace,
    )
    return [f"wrote {path}" for path in written]


async def _script_id(api: AdminClient, app: str, name: str) -> str:
    for script in (await api.get(_app_path(app) + "/scripts"))["items"]:
        if script["name"] == name:
            return str(script["id"])
    raise NotFound(f"no script {name!r} in {app}")


async def _rollback(api: AdminClient, app: str, name: str, version: int) -> list[str]:
    script_id = await _script_id(api, app, name)
    saved: dict[str, Any] = await api.post(
        f"/api/v1/admin/scripts/{script_id}/rollback", {"version": version}
    )
    return [f"{name}: version {version} saved again as version {saved['version']}"]


async def _apps(api: AdminClient) -> list[str]:
    apps = (await api.get("/api/v1/admin/apps"))["items"]
    return [
        f"{a['slug']}\t{a['name']}\t{a['dead_letters_unresolved']} open dead letters"
        for a in apps
    ]


async def _scripts(api: AdminClient, app: str) -> list[str]:
    scripts = (await api.get(_app_path(app) + "/scripts"))["items"]
    return [f"{s['name']}\t{s['kind']}\tv{s['version']}" for s in scripts]


async def _versions(api: AdminClient, app: str, name: str) -> list[str]:
    script_id = await _script_id(api, app, name)
    items = (await api.get(f"/api/v1/admin/scripts/{script_id}/versions"))["items"]
    return [
        f"v{v['version']}\t{v['recorded_at']}\t{v['actor'] or '-'}\t{v['bytes']} bytes"
        for v in items
    ]
