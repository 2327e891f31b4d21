"""The ``picloud`` command."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import logging
import secrets
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import shtab

import picloud
from picloud import event_loop
from picloud.cli._admin import add_admin_commands, run_admin, warn_if_no_admin
from picloud.cli._backup import add_backup_commands, run_backup
from picloud.cli._deploy import (
    CLIENT_COMMANDS,
    add_client_commands,
    run_client_command,
)
from picloud.cli._events import add_events_command, run_events
from picloud.cli._logs import add_logs_command, run_logs
from picloud.cli._preflight import check_can_serve
from picloud.cli._replay import add_replay_command, run_replay
from picloud.cli._secrets import add_secret_commands, run_secrets
from picloud.config import Settings, load_settings, prepare_ray_environment
from picloud.errors import PiCloudError
from picloud.logs import configure_logging
from picloud.store import EmbeddedPostgres, migrate, migration_status

if TYPE_CHECKING:
    from picloud.server import HostsOnly, Server

__all__ = ["main"]

log = logging.getLogger("picloud")

# Commands whose output is their answer: the embedded server's chatter is noise.
# Commands that print their answer: the embedded server's chatter is noise.
_QUIET = frozenset(
    {"admin", "events", "logs", "replay", "secrets", "backup", "restore"}
    | CLIENT_COMMANDS
)


@contextlib.contextmanager
def _postgres(settings: Settings) -> Iterator[tuple[str, EmbeddedPostgres | None]]:
    """The configured database's DSN, or the embedded server's (and the server)
    while it runs."""
    if settings.database_url:
        yield settings.database_url, None
        return
    embedded = EmbeddedPostgres(settings.data_path)
    dsn = embedded.start()
    try:
        yield dsn, embedded
    finally:
        embedded.stop()


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The configured database's DSN, or the embedded server's while it runs."""
    with _postgres(settings) as (dsn, _):
        yield dsn


def _serve(settings: Settings, *, front_door: bool) -> None:
    check_can_serve(settings, front_door=front_door)  # before anything starts
    log.info("data directory: %s", settings.data_path)
    with _postgres_and_ray(settings) as (dsn, embedded):
        # Ray's import is slow, and must follow prepare_ray_environment.
        from picloud.server import HostsOnly, Server  # noqa: PLC0415

        part: Server | HostsOnly = (
            Server(settings, dsn, owns_actors=settings.ray_address is None)
            if front_door
            else HostsOnly(settings, dsn)
        )
        event_loop.run(_run_until_signal(part, embedded))
    log.info("PiCloud stopped")


async def _run_until_signal(
    server: Server | HostsOnly, embedded: EmbeddedPostgres | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with asyncio.TaskGroup() as tasks:
        # The embedded Postgres is ours to keep running: restarted if it dies,
        # until PiCloud stops (then _postgres stops it).
        supervisor = None
        if embedded is not None:
            supervisor = tasks.create_task(embedded.supervise(), name="postgres")
        try:
            await server.start()
            services = getattr(server, "services", None)  # a front door's
            if services is not None:
                await warn_if_no_admin(services.store, log.warning)
            await stop.wait()
            log.info("stopping")
        finally:
            await server.stop()
            if supervisor is not None:
                supervisor.cancel()


@contextlib.contextmanager
def _postgres_and_ray(
    settings: Settings,
) -> Iterator[tuple[str, EmbeddedPostgres | None]]:
    """Both started at once: the embedded Postgres in a thread while Ray
    starts (the longest part of start-up) in this one."""
    with (
        concurrent.futures.ThreadPoolExecutor(1) as pool,
        contextlib.ExitStack() as stack,
    ):
        postgres = pool.submit(stack.enter_context, _postgres(settings))
        stack.callback(_start_ray(settings))
        yield postgres.result()


def _start_ray(settings: Settings) -> Callable[[], None]:
    """Start or join Ray; the function that stops it."""
    prepare_ray_environment(
        local=settings.ray_address is None,
        token=secrets.token_urlsafe(32),
        log_format=settings.log_format,
    )
    from picloud.hosting.ray_runtime import start_ray  # noqa: PLC0415  # slow

    return start_ray(settings)


def _migrate(settings: Settings, *, status: bool) -> None:
    with database(settings) as dsn:
        if status:
            for state in event_loop.run(migration_status(dsn, settings)):
                when = state.applied_at.isoformat() if state.applied_at else "pending"
                print(f"{state.version:04d} {state.name:40} {when}")
            return
        applied = event_loop.run(migrate(dsn, settings))
    print(f"applied {applied}" if applied else "nothing to apply")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="picloud", description=__doc__)
    parser.add_argument(
        "--version", action="version", version=f"picloud {picloud.__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="run PiCloud (embedded Postgres and local Ray by default)"
    )
    _add_join(serve)
    serve.add_argument(
        "--no-front-door",
        action="store_true",
        help="only host apps on this node (with --join): no HTTP listeners",
    )
    host = commands.add_parser(
        "host", help="host apps on this node of a cluster (serve --no-front-door)"
    )
    _add_join(host)
    migrate_command = commands.add_parser(
        "migrate", help="apply pending database migrations and exit"
    )
    migrate_command.add_argument(
        "--status", action="store_true", help="list the migrations, applied or not"
    )
    add_admin_commands(commands)
    add_events_command(commands)
    add_replay_command(commands)
    add_secret_commands(commands)
    add_client_commands(commands)
    add_backup_commands(commands)
    completion = commands.add_parser(
        "completion", help="print the shell completion script (eval it in your rc)"
    )
    completion.add_argument("shell", choices=shtab.SUPPORTED_SHELLS)
    add_logs_command(commands)
    return parser


def _add_join(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--join",
        metavar="ADDRESS",
        help="the Ray cluster to join, host:port of its head (PICLOUD_RAY_ADDRESS)",
    )


def _with_join(settings: Settings, args: argparse.Namespace) -> Settings:
    if getattr(args, "join", None):
        return msgspec.structs.replace(settings, ray_address=args.join)
    return settings


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except PiCloudError as e:
        sys.exit(f"picloud: {e}")
    configure_logging(
        "WARNING" if args.command in _QUIET else settings.log_level,
        settings.log_format,
        access_log=settings.access_log,
    )
    try:
        _run(args, settings)
    except PiCloudError as e:
        sys.exit(f"picloud: {e}")


# The commands that work on the database (configured or embedded) themselves.
_ON_THE_DATABASE: dict[str, Callable[[argparse.Namespace, Settings, Any], None]] = {
    "admin": run_admin,
    "events": run_events,
    "replay": run_replay,
    "secrets": run_secrets,
    "backup": run_backup,
    "restore": run_backup,
}


def _run(args: argparse.Namespace, settings: Settings) -> None:
    if args.command == "completion":
        sys.stdout.write(shtab.complete(_parser(), shell=args.shell))
    elif args.command in ("serve", "host"):
        front_door = args.command == "serve" and not args.no_front_door
        _serve(_with_join(settings, args), front_door=front_door)
    elif args.command == "migrate":
        _migrate(settings, status=args.status)
    elif args.command in CLIENT_COMMANDS:
        run_client_command(args, settings)
    elif args.command == "logs":
        run_logs(args, settings)
    else:
        _ON_THE_DATABASE[args.command](args, settings, database)
