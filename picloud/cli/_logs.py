"""``picloud logs APP``: an app's recent runs, and with ``--follow`` each new
one as it happens, from a running server (``PICLOUD_URL``, ``PICLOUD_API_KEY``).

One line per run: start time (UTC), status, script, trigger, duration and
the first line of its error; the conditions the log records beside the runs
(a delivery skipped at the trigger depth limit, requests refused by the CPU
budget, an abandoned execution, a dead letter, a host killed) get a line of
their own with their kind in the status column. ``--json`` prints the API's
records instead, one per line (a notice is the one with a ``kind``).

With ``--follow`` the stream is opened before the recent runs are read, so no
run falls between the two (one in both is printed once). Ctrl-C ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Coroutine
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import msgspec

from picloud import event_loop
from picloud.cli._http_client import AdminClient, admin_client
from picloud.config import Settings
from picloud.errors import InvalidInput

__all__ = ["add_logs_command", "run_logs"]

_STATUS = {"failed": "error", "error": "error", "ok": "ok"}
_MAX_RECENT = 500


def add_logs_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    logs = commands.add_parser(
        "logs",
        help="an app's recent runs (newest last), or follow them as they happen",
    )
    logs.add_argument("app", help="the app (slug or id)")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing runs as they come"
    )
    logs.add_argument("--script", help="only runs of this script (name or id)")
    logs.add_argument(
        "--status", choices=["failed", "ok"], help="only runs that ended so"
    )
    logs.add_argument(
        "--trigger",
        metavar="PREFIX",
        help="only runs whose trigger starts so (route:, async:, trigger:kv:…)",
    )
    logs.add_argument(
        "-n",
        "--lines",
        type=int,
        default=20,
        help=f"how many recent runs to print first (0 to {_MAX_RECENT}; default 20)",
    )
    logs.add_argument(
        "--json", action="store_true", help="JSON lines: the API's records"
    )


def run_logs(args: argparse.Namespace, settings: Settings) -> None:
    if not 0 <= args.lines <= _MAX_RECENT:
        raise InvalidInput(f"--lines must be from 0 to {_MAX_RECENT}")
    event_loop.run(_until_interrupted(_logs(args, settings)))


async def _until_interrupted(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` until it ends or Ctrl-C (or SIGTERM) stops it: a clean end."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stopped):
            pending.cancel()
        await asyncio.gather(stopped, return_exceptions=True)
    if task.done() and not task.cancelled():
        task.result()  # its error, if it failed
    else:
        await asyncio.gather(task, return_exceptions=True)


class _Printer:
    """Lines (or JSON lines) on stdout, script ids shown by name."""

    def __init__(self, client: AdminClient, app: str, *, json: bool) -> None:
        self._client = client
        self._app = app
        self._json = json
        self.names: dict[str, str] = {}
        self._unknown: set[str] = set()

    async def load_names(self) -> None:
        page = await self._client.get(f"/api/v1/admin/apps/{self._app}/scripts")
        self.names = {s["id"]: s["name"] for s in page["items"]}

    async def show(self, item: dict[str, Any]) -> None:
        if self._json:
            sys.stdout.write(msgspec.json.encode(item).decode() + "\n")
        else:
            script = item.get("script_id")
            if script and script not in self.names and script not in self._unknown:
                self._unknown.add(script)  # a script made since: look once
                await self.load_names()
            sys.stdout.write(line_of(item, self.names) + "\n")
        sys.stdout.flush()


def line_of(item: dict[str, Any], names: dict[str, str]) -> str:
    """One human line for an execution record or a notice."""
    kind = item.get("kind")
    when = item["at"] if kind else item["started_at"]
    status = kind or item["status"]
    script_id = item.get("script_id") or "-"
    script = names.get(script_id, script_id)
    trigger = item.get("trigger") or "-"
    duration = "-" if kind else _duration(float(item["duration_ms"]))
    text = (item.get("reason") if kind else item.get("error")) or ""
    first = text.strip().splitlines()[0] if text.strip() else ""
    if not kind and item.get("abandoned"):
        first = ("(caller gave up) " + first).strip()
    return (
        f"{_time(when)}  {status:<11} {script:<16} {trigger:<28} {duration:>8}  {first}"
    ).rstrip()


def _time(value: str) -> str:
    moment = datetime.fromisoformat(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _duration(ms: float) -> str:
    return f"{ms:.0f}ms" if ms < 1000 else f"{ms / 1000:.2f}s"


async def _filters(
    printer: _Printer, app: str, args: argparse.Namespace
) -> dict[str, str]:
    query: dict[str, str] = {}
    if args.status:
        query["status"] = _STATUS[args.status]
    if args.trigger:
        query["trigger"] = args.trigger
    if args.script:
        await printer.load_names()
        ids = [i for i, name in printer.names.items() if args.script in (i, name)]
        if not ids:
            raise InvalidInput(f"app {app!r} has no script {args.script!r}")
        query["script"] = ids[0]
    return query


async def _logs(args: argparse.Namespace, settings: Settings) -> None:
    async with admin_client(settings) as client:
        app = (await client.get(f"/api/v1/admin/apps/{quote(args.app, safe='')}"))["id"]
        printer = _Printer(client, app, json=args.json)
        await printer.load_names()
        query = await _filters(printer, app, args)
        base = f"/api/v1/admin/apps/{app}/executions"
        if not args.follow:
            await _recent(client, printer, base, query, args.lines)
            return
        # The stream first: it starts after every run that answered before it
        # opened, so the recent list that follows misses none in between.
        async with client.events(f"{base}/stream?{urlencode(query)}") as messages:
            shown = await _recent(client, printer, base, query, args.lines)
            await _follow(messages, printer, shown)


async def _recent(
    client: AdminClient,
    printer: _Printer,
    base: str,
    query: dict[str, str],
    count: int,
) -> set[str]:
    """Print the ``count`` newest runs, oldest first; their ids."""
    if count == 0:
        return set()
    page = await client.get(f"{base}?{urlencode({**query, 'limit': str(count)})}")
    items: list[dict[str, Any]] = page["items"]
    for item in reversed(items):
        await printer.show(item)
    return {item["id"] for item in items}


async def _follow(
    messages: AsyncIterator[Any], printer: _Printer, shown: set[str]
) -> None:
    async for message in messages:
        item = msgspec.json.decode(message.data)
        if message.event == "message" and item.get("id") in shown:
            continue  # the recent list printed it already
        await printer.show(item)
    print("picloud: the server closed the stream", file=sys.stderr)
