"""The front door's view of the AppHosts: placement and the channels to them.

Placement is rendezvous hashing of the app id over the host names, so adding
a host moves only the apps that now hash to it; a quarantined app goes to a
host of its own. Each host is reached over one channel, reopened (after
asking Ray where the host now listens) when it breaks.

Retries: a call that could not be sent is retried until its deadline (a host
restarting); a call lost after sending is retried once only if it is not an
invocation (admin commands carry idempotency keys, so the retry is safe; an
invocation may have run, and the caller gets 503 instead).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

from picloud.actors.protocol import Failure, Reply
from picloud.config import Settings
from picloud.domain.commands import Command, Deactivate, Invoke
from picloud.errors import ActorUnavailable, CommandTimeout
from picloud.hosting._channel import ChannelClient, open_channel
from picloud.hosting._host_actor import host_names, quarantine_host_name, start_app_host
from picloud.hosting._remote import call_remote

__all__ = ["HostLink", "HostPool", "rendezvous"]

_RECONNECT_PAUSE_S = 0.05
_PLACEMENT_MEMO = 100_000


def rendezvous(key: str, names: list[str]) -> str:
    """The name with the highest hash of (key, name)."""

    def score(name: str) -> bytes:
        return hashlib.blake2b(f"{key}\0{name}".encode(), digest_size=8).digest()

    return max(names, key=score)


class HostLink:
    """One host: its Ray handle and the channel to it."""

    def __init__(self, name: str, handle: Any, secret: str) -> None:
        self.name = name
        self.handle = handle
        self._secret = secret
        self._channel: ChannelClient | None = None
        self._connecting = asyncio.Lock()

    async def _channel_until(self, deadline: float) -> ChannelClient:
        """(Re)open the channel; the caller found none usable, but another
        caller may have opened one while this waited for the lock."""
        async with self._connecting:
            channel = self._channel
            if channel is not None and channel.usable:
                return channel
            remaining = deadline - asyncio.get_running_loop().time()
            host, port = await call_remote(
                self.handle.address.remote(),
                what=f"{self.name} address",
                seconds=max(remaining, 0.01),
            )
            try:
                async with asyncio.timeout(max(remaining, 0.01)):
                    self._channel = await open_channel(host, port, self._secret)
            except (OSError, TimeoutError) as e:
                raise ActorUnavailable(
                    f"{self.name} does not accept connections"
                ) from e
            return self._channel

    async def call(self, app_id: str, command: Command, deadline: float) -> Reply:
        """Send until sent or the deadline; a loss after sending comes as a Failure."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                channel = self._channel
                if channel is None or not channel.usable:
                    channel = await self._channel_until(deadline)
                return await channel.call(app_id, command, deadline - loop.time())
            except ActorUnavailable:
                if loop.time() + _RECONNECT_PAUSE_S >= deadline:
                    raise
                await asyncio.sleep(_RECONNECT_PAUSE_S)

    async def pid(self, seconds: float = 30.0) -> int:
        pid: int = await call_remote(
            self.handle.pid.remote(), what=f"{self.name} pid", seconds=seconds
        )
        return pid

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()


class HostPool:
    """All hosts the front door talks to; see the module docstring."""

    def __init__(
        self, settings: Settings, dsn: str, *, quarantined: Callable[[str], bool]
    ) -> None:
        self._settings = settings
        self._dsn = dsn
        self._quarantined = quarantined
        self._names = host_names(settings)
        self._placed: dict[str, str] = {}  # the hash is per request otherwise
        if settings.cluster_secret is None:
            raise ValueError("the host pool needs the cluster secret")
        self._secret = settings.cluster_secret
        self.links = {name: self._link(name) for name in self._names}

    def _link(self, name: str) -> HostLink:
        handle = start_app_host(name, self._settings, self._dsn)
        return HostLink(name, handle, self._secret)

    def link_for(self, app_id: str) -> HostLink:
        if self._quarantined(app_id):
            name = quarantine_host_name(app_id)
            if name not in self.links:
                self.links[name] = self._link(name)
            return self.links[name]
        return self.shared_link_for(app_id)

    def shared_link_for(self, app_id: str) -> HostLink:
        """The shared host the app hashes to, quarantined or not."""
        name = self._placed.get(app_id)
        if name is None:
            if len(self._placed) >= _PLACEMENT_MEMO:
                self._placed.clear()
            name = self._placed[app_id] = rendezvous(app_id, self._names)
        return self.links[name]

    async def call(self, app_id: str, command: Command, timeout_s: float) -> Reply:
        """The app's reply to ``command``; raises CommandTimeout at the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        link = self.link_for(app_id)
        try:
            reply = await link.call(app_id, command, deadline)
            if _lost(reply) and not isinstance(command, Invoke):
                reply = await link.call(app_id, command, deadline)
        except ActorUnavailable as e:
            if loop.time() >= deadline:
                raise CommandTimeout(
                    f"the app's host did not come back within {timeout_s:g}s"
                ) from e
            raise
        return reply

    async def deactivate(self, app_id: str) -> None:
        """Passivate the app on its host now (it was deleted); best effort."""
        await self.call(app_id, Deactivate(), 10.0)

    async def ready(self, seconds: float) -> None:
        """Wait until every shared host answers."""
        await asyncio.gather(*(link.pid(seconds) for link in self.links.values()))

    def handles(self) -> list[Any]:
        return [link.handle for link in self.links.values()]

    def close(self) -> None:
        for link in self.links.values():
            link.close()


def _lost(reply: Reply) -> bool:
    return isinstance(reply, Failure) and reply.kind == "ActorUnavailable"
