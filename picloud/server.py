"""The whole of PiCloud in one object: database, actors and the front door.

``picloud serve`` runs it until a signal; tests start it in-process on a free
loopback port. Ray must already be initialised (the CLI or a test fixture
owns that choice); the database is the given DSN.

On each node the process starts (or finds again) the node's own app hosts
(:class:`~picloud.hosting.node_hosts.NodeHosts`); the front door places apps
over the hosts of every node. :class:`HostsOnly` is a node that hosts apps
and serves no HTTP (``picloud host``).
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
from picloud.errors import ActorUnavailable, CommandTimeout, PiCloudError
from picloud.event_loop import freeze_heap
from picloud.hosting.cluster_secret import with_cluster_secret
from picloud.hosting.control_actor import (
    ControlPlaneClient,
    LocalControlPlane,
    RemoteControlPlane,
    start_control_plane,
)
from picloud.hosting.host_pool import HostPool
from picloud.hosting.node_hosts import NodeHosts
from picloud.hosting.scheduler import sweep_retention, wake_due_apps
from picloud.hosting.secret_key import with_secret_key
from picloud.http.app import answer_protocol_errors_as_json, make_app
from picloud.http.ingress import apps_handler
from picloud.http.routing import Routing
from picloud.http.state import BackgroundTasks, Services
from picloud.store import (
    CommitSignals,
    Database,
    migrate,
    relay_commit_signals,
)
from picloud.store.commit_signals import ROUTING_CHANNEL

__all__ = ["HostsOnly", "Server"]

log = logging.getLogger(__name__)

_ACTOR_START_TIMEOUT = 120.0


class Server:
    """Start and stop PiCloud against ``dsn``.

    ``owns_actors``: stop the named actors on :meth:`stop` (a test's private
    namespace, or a local Ray). When joining a cluster, :meth:`stop` leaves
    the control plane and the quarantine hosts running and drains this
    node's hosts (their apps move to the other nodes without an error).
    """

    def __init__(self, settings: Settings, dsn: str, *, owns_actors: bool) -> None:
        # Actors run in other processes, maybe other machines: no relative paths.
        self.settings = with_secret_key(
            with_cluster_secret(
                msgspec.structs.replace(settings, data_dir=str(settings.data_path))
            )
        )
        self.dsn = dsn
        self.owns_actors = owns_actors
        self.port: int | None = None
        self.apps_port: int | None = None
        self._stack = AsyncExitStack()
        self._actors: list[Any] = []
        self.services: Services | None = None
        self.node_hosts: NodeHosts | None = None

    @property
    def url(self) -> str:
        """The admin listener."""
        return f"http://{self.settings.http_host}:{self.port}"

    @property
    def apps_url(self) -> str:
        """The apps listener: ``{apps_url}/apps/{slug}/…``."""
        host = self.settings.apps_host or self.settings.http_host
        return f"http://{host}:{self.apps_port}"

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        await self._migrate()
        # The actors' processes start (a second or so each) while the front
        # door opens its database and loads its routing table. Alone on a
        # machine, the front door runs the control plane itself.
        handle = None
        if self.settings.ray_address is not None:
            handle = start_control_plane(self.settings, self.dsn)
            self._actors.append(handle)
        if self.settings.app_hosts:
            self.node_hosts = NodeHosts(self.settings, self.dsn)
        routing = Routing()
        db = await self._open_database()
        hosts = HostPool(
            self.settings,
            self.dsn,
            registry=db.hosts,
            quarantined=routing.is_quarantined,
        )
        self._stack.callback(hosts.close)
        self._stack.callback(lambda: self._actors.extend(hosts.quarantine_handles()))
        await routing.load(db)
        control, _ = await asyncio.gather(
            self._control_plane(handle, db), self._node_ready()
        )
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
        self._follow(self.services)
        await self._serve_http(self.services)
        freeze_heap()

    async def _open_database(self) -> Database:
        # The front door follows the log for its routing table only: it listens
        # to the commits that change routes, not to every invocation's.
        signals = CommitSignals(ROUTING_CHANNEL)
        db = await Database.open(self.dsn, self.settings, signals=signals)
        self._stack.push_async_callback(db.close)
        await self._stack.enter_async_context(
            relay_commit_signals(signals, self.dsn, self.settings)
        )
        return db

    def _follow(self, services: Services) -> None:
        """The background work of a front door: the routing table and the live
        hosts kept current, due wake-ups, retention."""
        hosts, routing, tasks = services.hosts, services.routing, services.tasks
        routing.on_quarantine = lambda app_id: tasks.spawn(_move_out(hosts, app_id))
        poll = self.settings.event_poll_interval_ms / 1000
        tasks.spawn(routing.follow(services.db.log, poll))
        tasks.spawn(hosts.follow())
        tasks.spawn(wake_due_apps(services.db.scheduler, hosts, self.settings))
        tasks.spawn(sweep_retention(services.db.scheduler, hosts, self.settings))

    async def _node_ready(self) -> None:
        if self.node_hosts is not None:
            await self.node_hosts.ready(_ACTOR_START_TIMEOUT)

    async def _migrate(self) -> None:
        applied = await migrate(self.dsn, self.settings)
        if applied:
            log.info("applied migrations %s", applied)

    async def _control_plane(self, handle: Any, db: Database) -> ControlPlaneClient:
        """The control plane's client, once it answers: this process's own
        plane without ``handle``, else the actor's."""
        if handle is None:
            local = LocalControlPlane(db.log)
            await local.start()
            return local
        control = RemoteControlPlane(
            handle, timeout=self.settings.sync_timeout_ms / 1000
        )
        deadline = asyncio.get_running_loop().time() + _ACTOR_START_TIMEOUT
        renewed = False
        while True:
            try:
                await control.ping(seconds=10.0)
                if not renewed:
                    renewed = True
                    if await control.renew_if_older():
                        continue
            except (ActorUnavailable, CommandTimeout):
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)
            else:
                return control

    async def _serve_http(self, services: Services) -> None:
        """Two listeners, two origins: the admin API and dashboard on one, the
        apps on the other, so a script never sees an admin's session."""
        settings = self.settings
        admin = web.AppRunner(make_app(services), access_log=None, handle_signals=False)
        self.port = await self._listen(admin, settings.http_host, settings.http_port)
        limit = settings.max_request_bytes

        loop = asyncio.get_running_loop()

        def request(  # the request factory of aiohttp's low-level server
            message: Any, payload: Any, protocol: Any, writer: Any, task: Any
        ) -> web.BaseRequest:
            return web.BaseRequest(
                message, payload, protocol, writer, task, loop, client_max_size=limit
            )

        # No aiohttp access log (the runner's access_log does not reach a
        # Server made beforehand): it writes the query string, where callers
        # put tokens; ours (http/_observe.py) does not.
        apps = web.ServerRunner(
            web.Server(
                apps_handler(services), request_factory=request, access_log=None
            ),
            handle_signals=False,
        )
        apps_host = settings.apps_host or settings.http_host
        self.apps_port = await self._listen(apps, apps_host, settings.apps_port)
        log.info(
            "PiCloud listening on %s (admin) and %s (apps)", self.url, self.apps_url
        )

    async def _listen(self, runner: web.BaseRunner, host: str, port: int) -> int:
        """Serve ``runner`` on host:port; the port actually bound (0: any)."""
        await runner.setup()
        assert runner.server is not None  # noqa: S101  # made by setup()
        answer_protocol_errors_as_json(runner.server)
        self._stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        return int(runner.addresses[-1][1])

    async def stop(self) -> None:
        await self._stack.aclose()
        if self.owns_actors:
            for handle in self._actors:
                with contextlib.suppress(Exception):
                    ray.kill(handle, no_restart=True)
            if self.node_hosts is not None:
                self.node_hosts.kill()
        elif self.node_hosts is not None:
            await self.node_hosts.drain()
        self._actors.clear()
        self.node_hosts = None


class HostsOnly:
    """A node that hosts apps and serves no HTTP: its hosts, until stopped
    (then drained, as :meth:`Server.stop` does when joining)."""

    def __init__(self, settings: Settings, dsn: str) -> None:
        self.settings = settings
        self.dsn = dsn
        self.node_hosts: NodeHosts | None = None

    async def start(self) -> None:
        applied = await migrate(self.dsn, self.settings)
        if applied:
            log.info("applied migrations %s", applied)
        self.node_hosts = NodeHosts(self.settings, self.dsn)
        await self.node_hosts.ready(_ACTOR_START_TIMEOUT)
        log.info(
            "hosting apps on node %s: %s",
            self.node_hosts.node_id,
            ", ".join(self.node_hosts.names),
        )

    async def stop(self) -> None:
        if self.node_hosts is not None:
            await self.node_hosts.drain()
            self.node_hosts = None


async def _move_out(hosts: HostPool, app_id: str) -> None:
    """A quarantined app leaves its shared host (it activates on its own one)."""
    try:
        await hosts.call(app_id, Deactivate(), 10.0, shared=True)
    except PiCloudError as e:
        log.warning("could not move quarantined app %s out: %s", app_id, e)
