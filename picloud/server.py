"""The whole of PiCloud in one object: database, actors and the front door.

``picloud serve`` runs it until a signal; tests start it in-process on a free
loopback port. Ray must already be initialised (the CLI or a test fixture
owns that choice); the database is the given DSN.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack
from typing import Any

import msgspec
import ray
from aiohttp import web

from picloud.config import Settings
from picloud.domain.commands import Deactivate
from picloud.errors import ActorUnavailable, CommandTimeout
from picloud.event_loop import freeze_heap
from picloud.hosting.control_actor import ControlPlaneClient, start_control_plane
from picloud.hosting.host_pool import HostPool
from picloud.hosting.scheduler import sweep_retention, wake_due_apps
from picloud.http.app import answer_protocol_errors_as_json, make_app
from picloud.http.ingress import serve_apps_first
from picloud.http.routing import Routing
from picloud.http.state import BackgroundTasks, Services
from picloud.store import CommitSignals, Database, migrate, relay_commit_signals
from picloud.store.commit_signals import ROUTING_CHANNEL

__all__ = ["Server"]

log = logging.getLogger(__name__)

_ACTOR_START_TIMEOUT = 120.0


class Server:
    """Start and stop PiCloud against ``dsn``.

    ``owns_actors``: stop the named actors on :meth:`stop` (a test's private
    namespace, or a local Ray); leave them running when joining a cluster.
    """

    def __init__(self, settings: Settings, dsn: str, *, owns_actors: bool) -> None:
        # Actors run in other processes, maybe other machines: no relative paths.
        self.settings = msgspec.structs.replace(
            settings, data_dir=str(settings.data_path)
        )
        self.dsn = dsn
        self.owns_actors = owns_actors
        self.port: int | None = None
        self._stack = AsyncExitStack()
        self._actors: list[Any] = []
        self.services: Services | None = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.http_host}:{self.port}"

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        await self._migrate()
        control = await self._start_control_plane()
        # The front door follows the log for its routing table only: it listens
        # to the commits that change routes, not to every invocation's.
        signals = CommitSignals(ROUTING_CHANNEL)
        db = await Database.open(self.dsn, self.settings, signals=signals)
        self._stack.push_async_callback(db.close)
        await self._stack.enter_async_context(relay_commit_signals(signals, self.dsn))
        routing = Routing()
        await routing.load(db)
        hosts = HostPool(self.settings, self.dsn, quarantined=routing.is_quarantined)
        self._stack.callback(hosts.close)
        self._stack.callback(lambda: self._actors.extend(hosts.handles()))
        await hosts.ready(_ACTOR_START_TIMEOUT)
        tasks = BackgroundTasks()
        self._stack.push_async_callback(tasks.close)
        self.services = Services(
            settings=self.settings,
            db=db,
            control=control,
            hosts=hosts,
            routing=routing,
            tasks=tasks,
        )
        routing.on_quarantine = lambda app_id: tasks.spawn(_move_out(hosts, app_id))
        poll = self.settings.event_poll_interval_ms / 1000
        tasks.spawn(routing.follow(db.log, poll))
        tasks.spawn(wake_due_apps(db.scheduler, hosts, self.settings))
        tasks.spawn(sweep_retention(db.scheduler, hosts, self.settings))
        await self._serve_http(self.services)
        freeze_heap()

    async def _migrate(self) -> None:
        applied = await migrate(self.dsn, self.settings)
        if applied:
            log.info("applied migrations %s", applied)

    async def _start_control_plane(self) -> ControlPlaneClient:
        handle = start_control_plane(self.settings, self.dsn)
        self._actors.append(handle)
        control = ControlPlaneClient(
            handle, timeout=self.settings.sync_timeout_ms / 1000
        )
        deadline = asyncio.get_running_loop().time() + _ACTOR_START_TIMEOUT
        while True:
            try:
                await control.ping(seconds=10.0)
            except (ActorUnavailable, CommandTimeout):
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)
            else:
                return control

    async def _serve_http(self, services: Services) -> None:
        runner = web.AppRunner(
            make_app(services), access_log=None, handle_signals=False
        )
        await runner.setup()
        assert runner.server is not None  # noqa: S101  # made by setup()
        serve_apps_first(runner.server, services)
        answer_protocol_errors_as_json(runner.server)
        self._stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(
            runner, self.settings.http_host, self.settings.http_port, reuse_address=True
        )
        await site.start()
        # The port actually bound (the setting may be 0: any free port).
        self.port = int(runner.addresses[0][1])
        log.info("PiCloud listening on %s", self.url)

    async def stop(self) -> None:
        await self._stack.aclose()
        if self.owns_actors:
            for handle in self._actors:
                with contextlib.suppress(Exception):
                    ray.kill(handle, no_restart=True)
        self._actors.clear()


async def _move_out(hosts: HostPool, app_id: str) -> None:
    """A quarantined app leaves its shared host (it activates on its own one)."""
    await hosts.shared_link_for(app_id).call(
        app_id, Deactivate(), asyncio.get_running_loop().time() + 10.0
    )
