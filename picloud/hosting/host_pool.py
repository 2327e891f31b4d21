"""The front door's view of the AppHosts: placement and the channels to them.

Placement is rendezvous hashing of the app id over the shared hosts alive
now (see :mod:`picloud.hosting._membership`), which the pool re-reads from
the registry every heartbeat interval (:meth:`HostPool.follow`): when a node
stops or dies its hosts fall silent, and within the heartbeat timeout their
apps are placed on the hosts of the other nodes, where they activate from
the log. A quarantined app goes to a host of its own, found through Ray.

Each host is reached over one channel, opened to the address the host wrote
in the registry (or, for a host of its own, that Ray reports), and reopened
when it breaks.

Retries: a call that could not be sent, or that a host refused without
running it (the app moved away from it, or the host is leaving), is placed
again and retried until its deadline (a host restarting, a node gone that
the registry has not yet shown as gone, a change this front door has not
yet read); a call lost after sending is retried once only if it is not
an invocation (admin commands carry idempotency keys, so the retry is safe;
an invocation may have run, and the caller gets 503 instead).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from picloud.actors.protocol import Failure, Reply
from picloud.config import Settings
from picloud.domain.commands import Command, Deactivate, Invoke
from picloud.domain.records import HostRecord
from picloud.errors import (
    ActorUnavailable,
    CommandTimeout,
    NotPlacedHere,
    PiCloudError,
)
from picloud.hosting._channel import ChannelClient, open_channel
from picloud.hosting._host_actor import quarantine_host_name, start_app_host
from picloud.hosting._membership import Membership, rendezvous
from picloud.hosting._remote import call_remote, find_actor
from picloud.metrics import HOST_RESTARTS
from picloud.store import HostRegistry, HostRow

__all__ = ["HostLink", "HostPool", "rendezvous"]

log = logging.getLogger(__name__)

_RECONNECT_PAUSE_S = 0.05
_CONNECT_TIMEOUT_S = 1.0  # a node that vanished answers no SYN: place again
_PLACEMENT_MEMO = 100_000

Locate = Callable[[float], Awaitable[tuple[str, int]]]


class HostLink:
    """One host: where it listens (``locate``) and the channel to it."""

    def __init__(
        self,
        name: str,
        secret: str,
        locate: Locate,
        namespace: str,
        *,
        handle: Any = None,
    ) -> None:
        self.name = name
        self._secret = secret
        self._locate = locate
        self._namespace = namespace
        self._channel: ChannelClient | None = None
        self._connecting = asyncio.Lock()
        self._handle = handle

    async def _open(self, deadline: float) -> ChannelClient:
        """(Re)open the channel; the caller found none usable, but another
        caller may have opened one while this waited for the lock."""
        async with self._connecting:
            channel = self._channel
            if channel is not None and channel.usable:
                return channel
            remaining = max(deadline - asyncio.get_running_loop().time(), 0.01)
            host, port = await self._locate(remaining)
            try:
                async with asyncio.timeout(min(remaining, _CONNECT_TIMEOUT_S)):
                    self._channel = await open_channel(host, port, self._secret)
            except (OSError, TimeoutError) as e:
                raise ActorUnavailable(
                    f"{self.name} does not accept connections"
                ) from e
            return self._channel

    async def call(self, app_id: str, command: Command, deadline: float) -> Reply:
        """One attempt. Raises ActorUnavailable if it could not be sent; a
        loss after sending comes back as a Failure."""
        channel = self._channel
        if channel is None or not channel.usable:
            channel = await self._open(deadline)
        remaining = deadline - asyncio.get_running_loop().time()
        return await channel.call(app_id, command, remaining)

    async def actor(self, seconds: float) -> Any:
        """The host's Ray actor, looked up once by name (tests, benches and
        the hosts endpoint ask; requests never do)."""
        if self._handle is None:
            self._handle = await find_actor(
                self.name, namespace=self._namespace, seconds=seconds
            )
        return self._handle

    async def pid(self, seconds: float = 30.0) -> int:
        actor = await self.actor(seconds)
        pid: int = await call_remote(
            actor.pid.remote(), what=f"{self.name} pid", seconds=seconds
        )
        return pid

    async def active_apps(self, seconds: float) -> int:
        actor = await self.actor(seconds)
        stats: dict[str, Any] = await call_remote(
            actor.stats.remote(), what=f"{self.name} stats", seconds=seconds
        )
        return len(stats["active_apps"])

    async def metrics(self, seconds: float) -> str:
        """The host's metrics in Prometheus' text format."""
        actor = await self.actor(seconds)
        text: str = await call_remote(
            actor.metrics.remote(), what=f"{self.name} metrics", seconds=seconds
        )
        return text

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()


class HostPool:
    """All hosts the front door talks to; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        dsn: str,
        *,
        registry: HostRegistry,
        quarantined: Callable[[str], bool],
    ) -> None:
        if settings.cluster_secret is None:
            raise ValueError("the host pool needs the cluster secret")
        self._settings = settings
        self._dsn = dsn
        self._registry = registry
        self._quarantined = quarantined
        self._secret = settings.cluster_secret
        self._interval_s = settings.host_heartbeat_interval_ms / 1000
        self._timeout_s = settings.host_heartbeat_timeout_ms / 1000
        self.membership = Membership(self._timeout_s)
        self._shared: dict[str, HostLink] = {}
        self._own: dict[str, tuple[HostLink, Any]] = {}  # quarantine hosts
        self._placed: dict[str, str] = {}  # the hash is per request otherwise
        self._warned = -math.inf

    # -- membership --------------------------------------------------------------

    async def refresh(self) -> None:
        """Re-read the live hosts; placement follows at once."""
        try:
            rows = await self._registry.alive(timeout_s=self._timeout_s)
        except PiCloudError as e:
            self.membership.failed(time.monotonic())
            if time.monotonic() - self._warned > 60:  # not every beat in an outage
                self._warned = time.monotonic()
                log.warning("could not read the live app hosts: %s", e)
            return
        before = self.membership.rows
        if self.membership.update(rows, time.monotonic()):
            _count_restarts(before, self.membership.rows)
            self._placed.clear()
            self._sync_links()

    def _sync_links(self) -> None:
        names = self.membership.names
        if names != sorted(self._shared):
            log.info("app hosts alive: %s", ", ".join(names) or "none")
        gone = [name for name in self._shared if name not in names]
        for name in gone:
            # Calls under way to a host that left (drained) may still finish;
            # to one whose node died they fail here instead of at their deadline.
            link = self._shared.pop(name)
            asyncio.get_running_loop().call_later(self._timeout_s, link.close)
        for name in names:
            if name not in self._shared:
                self._shared[name] = HostLink(
                    name,
                    self._secret,
                    self._address_of(name),
                    self._settings.ray_namespace,
                )

    def _address_of(self, name: str) -> Locate:
        async def locate(_seconds: float) -> tuple[str, int]:
            row = self.membership.rows.get(name)
            if row is None:
                raise ActorUnavailable(f"{name} is gone")
            return row.host, row.port

        return locate

    async def follow(self) -> None:
        """Forever: refresh the membership every heartbeat interval."""
        while True:
            await asyncio.sleep(self._interval_s)
            await self.refresh()

    async def ready(self, seconds: float) -> None:
        """Wait until at least one shared host is alive."""
        deadline = time.monotonic() + seconds
        while True:
            await self.refresh()
            if self.membership.names:
                return
            if time.monotonic() > deadline:
                raise ActorUnavailable(f"no app host alive after {seconds:g}s")
            await asyncio.sleep(min(self._interval_s, 0.1))

    # -- placement ---------------------------------------------------------------

    def link_for(self, app_id: str) -> HostLink:
        if self._quarantined(app_id):
            return self._own_link(quarantine_host_name(app_id))
        return self.shared_link_for(app_id)

    def _own_link(self, name: str) -> HostLink:
        entry = self._own.get(name)
        if entry is None:
            handle = start_app_host(name, self._settings, self._dsn)

            async def locate(seconds: float) -> tuple[str, int]:
                address: tuple[str, int] = await call_remote(
                    handle.address.remote(), what=f"{name} address", seconds=seconds
                )
                return address

            namespace = self._settings.ray_namespace
            link = HostLink(name, self._secret, locate, namespace, handle=handle)
            entry = self._own[name] = (link, handle)
        return entry[0]

    def shared_link_for(self, app_id: str) -> HostLink:
        """The shared host the app is placed on, quarantined or not."""
        name = self._placed.get(app_id)
        if name is None or name not in self._shared:
            name = self.membership.place(app_id)
            if name is None:
                raise ActorUnavailable("no app host is alive")
            if len(self._placed) >= _PLACEMENT_MEMO:
                self._placed.clear()
            self._placed[app_id] = name
        return self._shared[name]

    @property
    def links(self) -> dict[str, HostLink]:
        """Every host known now: the live shared ones and the quarantine ones."""
        return {**self._shared, **{name: link for name, (link, _) in self._own.items()}}

    # -- calls ---------------------------------------------------------------------

    async def call(
        self, app_id: str, command: Command, timeout_s: float, *, shared: bool = False
    ) -> Reply:
        """The app's reply to ``command``; raises CommandTimeout at the deadline.

        ``shared``: to the shared host the app is placed on even when it is
        quarantined (to move it out of there).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        resent = False
        place = self.shared_link_for if shared else self.link_for
        while True:
            try:
                reply = await place(app_id).call(app_id, command, deadline)
            except ActorUnavailable as e:
                if loop.time() + _RECONNECT_PAUSE_S >= deadline:
                    raise CommandTimeout(
                        f"the app's host did not come back within {timeout_s:g}s"
                    ) from e
                await asyncio.sleep(_RECONNECT_PAUSE_S)
                continue
            if _refused(reply) and loop.time() + _RECONNECT_PAUSE_S < deadline:
                await asyncio.sleep(_RECONNECT_PAUSE_S)  # placed again, then sent
                continue
            if _lost(reply) and not isinstance(command, Invoke) and not resent:
                resent = True
                continue
            return reply

    async def deactivate(self, app_id: str) -> None:
        """Passivate the app on its host now (it was deleted); best effort."""
        await self.call(app_id, Deactivate(), 10.0)

    async def describe(self, seconds: float = 2.0) -> list[HostRecord]:
        """The live shared hosts, each with its count of active apps."""

        async def count(link: HostLink) -> int | None:
            try:
                return await link.active_apps(seconds)
            except PiCloudError:
                return None

        rows = [self.membership.rows[name] for name in self.membership.names]
        counts = await asyncio.gather(*(count(self._shared[r.name]) for r in rows))
        return [
            HostRecord(
                name=row.name,
                node_id=row.node_id,
                address=f"{row.host}:{row.port}",
                active_apps=active,
            )
            for row, active in zip(rows, counts, strict=True)
        ]

    async def metrics(self, seconds: float) -> dict[str, str | None]:
        """Each known host's metrics (text format), None for one that did not
        answer within ``seconds``: a scrape never waits longer, nor fails."""

        async def ask(link: HostLink) -> str | None:
            try:
                return await link.metrics(seconds)
            except PiCloudError as e:
                log.info("%s sent no metrics: %s", link.name, e)
                return None

        links = self.links
        found = await asyncio.gather(*(ask(link) for link in links.values()))
        return dict(zip(links, found, strict=True))

    def quarantine_handles(self) -> list[Any]:
        return [handle for _, handle in self._own.values()]

    def close(self) -> None:
        for link in self.links.values():
            link.close()


def _count_restarts(before: dict[str, HostRow], after: dict[str, HostRow]) -> None:
    """A host that wrote a new address is a new process: Ray restarted it
    (it listens on a port of its own choosing), or its node came back."""
    for name, row in after.items():
        old = before.get(name)
        if old is not None and (old.host, old.port) != (row.host, row.port):
            HOST_RESTARTS.labels(name).inc()
            log.info("app host %s is back at %s:%d", name, row.host, row.port)


def _lost(reply: Reply) -> bool:
    return isinstance(reply, Failure) and reply.kind == "ActorUnavailable"


def _refused(reply: Reply) -> bool:
    """A host said the call did not run: the app is placed elsewhere now."""
    return isinstance(reply, Failure) and reply.kind == NotPlacedHere.__name__
