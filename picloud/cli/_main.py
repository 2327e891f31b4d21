"""The ``picloud`` command."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import picloud
from picloud import event_loop
from picloud.cli._admin import add_admin_commands, run_admin, warn_if_no_admin
from picloud.cli._events import add_events_command, run_events
from picloud.cli._preflight import check_can_serve
from picloud.cli._replay import add_replay_command, run_replay
from picloud.cli._secrets import add_secret_commands, run_secrets
from picloud.config import Settings, load_settings, quiet_ray
from picloud.errors import PiCloudError
from picloud.store import EmbeddedPostgres, migrate, migration_status

if TYPE_CHECKING:
    from picloud.server import Server

__all__ = ["main"]

log = logging.getLogger("picloud")

# Commands whose output is their answer: the embedded server's chatter is noise.
# Commands that print their answer: the embedded server's chatter is noise.
_QUIET = frozenset({"admin", "events", "replay", "secrets"})


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


def _serve(settings: Settings) -> None:
    check_can_serve(settings)  # before anything starts
    log.info("data directory: %s", settings.data_path)
    with _postgres_and_ray(settings) as (dsn, embedded):
        from picloud.server import Server  # noqa: PLC0415  # Ray's import is slow

        server = Server(settings, dsn, owns_actors=settings.ray_address is None)
        event_loop.run(_run_until_signal(server, embedded))
    log.info("PiCloud stopped")


async def _run_until_signal(server: Server, embedded: EmbeddedPostgres | None) -> None:
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
            if server.services is not None:
                await warn_if_no_admin(server.services.store, log.warning)
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
        _start_ray(settings)
        stack.callback(_stop_ray)
        yield postgres.result()


def _start_ray(settings: Settings) -> None:
    import ray  # noqa: PLC0415  # Ray's import is slow; only `serve` needs it

    quiet_ray()
    local = settings.ray_address is None
    ray.init(
        address=settings.ray_address or "local",
        namespace=settings.ray_namespace,
        include_dashboard=False,
        logging_level=logging.WARNING,
        # Alone on this machine: Ray's processes talk over loopback.
        _node_ip_address="127.0.0.1" if local else None,
    )


def _stop_ray() -> None:
    import ray  # noqa: PLC0415

    ray.shutdown()


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
    commands.add_parser(
        "serve", help="run PiCloud (embedded Postgres and local Ray by default)"
    )
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
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except PiCloudError as e:
        sys.exit(f"picloud: {e}")
    logging.basicConfig(
        level="WARNING" if args.command in _QUIET else settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The embedded server's library narrates every pg_ctl call at INFO.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    try:
        if args.command == "serve":
            _serve(settings)
        elif args.command == "migrate":
            _migrate(settings, status=args.status)
        elif args.command == "admin":
            run_admin(args, settings, database)
        elif args.command == "events":
            run_events(args, settings, database)
        elif args.command == "replay":
            run_replay(args, settings, database)
        elif args.command == "secrets":
            run_secrets(args, settings, database)
    except PiCloudError as e:
        sys.exit(f"picloud: {e}")
