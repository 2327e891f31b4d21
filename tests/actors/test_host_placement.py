"""A shared AppHost in-process (no Ray): it beats in the registry, lets go of
the apps that placement puts on a host that joined, and leaves at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from picloud.actors.protocol import Failure, HttpReply
from picloud.config import Settings
from picloud.hosting._app_host import AppHost
from picloud.hosting._channel import open_channel
from picloud.hosting.host_pool import rendezvous
from picloud.store import EventLog, HostRegistry, HostRow
from tests.actors.test_app_host import SECRET, get, routed_app

ME = "picloud-host-aaaa-0"
JOINER = HostRow("picloud-host-bbbb-0", "bbbb", "127.0.0.1", 1)
TIMEOUT_S = 0.4


@pytest.fixture
async def shared_host(database: str, tmp_path: Any) -> AsyncIterator[AppHost]:
    settings = Settings(
        data_dir=str(tmp_path),
        db_pool_max=4,
        cluster_secret=SECRET,
        host_heartbeat_interval_ms=100,
        host_heartbeat_timeout_ms=int(TIMEOUT_S * 1000),
    )
    host = AppHost(ME, settings, database, node_id="aaaa")
    await host.start()
    yield host
    await host.stop()


def refused(reply: object) -> bool:
    return isinstance(reply, Failure) and reply.kind == "NotPlacedHere"


def active(host: AppHost) -> set[str]:
    apps: list[str] = host.stats()["active_apps"]  # type: ignore[assignment]  # stats() is a loose dict (a Ray method's answer)
    return set(apps)


async def test_a_host_lets_go_of_the_apps_a_joining_host_takes_then_leaves(
    shared_host: AppHost, event_log: EventLog, pool: asyncpg.Pool
) -> None:
    registry = HostRegistry(pool)
    assert [r.name for r in await registry.alive(timeout_s=TIMEOUT_S)] == [ME]
    assert shared_host.address is not None
    channel = await open_channel(*shared_host.address, SECRET)
    try:
        routed = dict(
            [await routed_app(event_log, channel, f"p{n}") for n in range(12)]
        )
        apps = set(routed)
        assert active(shared_host) == apps
        names = sorted([ME, JOINER.name])
        moving = {app for app in apps if rendezvous(app, names) == JOINER.name}
        assert moving
        assert moving != apps
        deadline = asyncio.get_running_loop().time() + 5
        while active(shared_host) != apps - moving:
            assert asyncio.get_running_loop().time() < deadline, active(shared_host)
            await registry.beat(JOINER, timeout_s=TIMEOUT_S)  # the joiner is alive
            await asyncio.sleep(0.05)
        # A front door that has not seen the joiner yet is refused, not served
        # by a second writer: the call did not run, it may go to the joiner.
        gone, kept = next(iter(moving)), next(iter(apps - moving))
        assert refused(await channel.call(gone, get(routed[gone], 1), 10))
        assert isinstance(await channel.call(kept, get(routed[kept], 2), 10), HttpReply)
        await shared_host.leave()
        assert refused(await channel.call(kept, get(routed[kept], 3), 10))
    finally:
        channel.close()
    assert ME not in {r.name for r in await registry.alive(timeout_s=TIMEOUT_S)}
