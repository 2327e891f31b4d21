"""AppHost in-process (no Ray): the channel, activation, passivation, LRU cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from picloud.actors.protocol import Call, Done, Failure, HttpReply, encode_frame
from picloud.config import Settings
from picloud.domain.commands import AddRoute, Invoke, SaveScript
from picloud.events.app import RequestRecord
from picloud.hosting._app_host import AppHost
from picloud.hosting._channel import ChannelClient, open_channel
from picloud.store import EventLog
from tests.actors.helpers import make_app


@pytest.fixture
def host_settings() -> dict[str, Any]:
    return {}


SECRET = "test cluster secret"


@pytest.fixture
async def host(
    database: str, host_settings: dict[str, Any], tmp_path: Any
) -> AsyncIterator[AppHost]:
    settings = Settings(
        data_dir=str(tmp_path),
        db_pool_max=4,
        cluster_secret=SECRET,
        **host_settings,
    )
    host = AppHost("test-host", settings, database)
    await host.start()
    yield host
    await host.stop()


@pytest.fixture
async def channel(host: AppHost) -> AsyncIterator[ChannelClient]:
    assert host.address is not None
    client = await open_channel(*host.address, SECRET)
    yield client
    client.close()


async def routed_app(
    event_log: EventLog, channel: ChannelClient, slug: str
) -> tuple[str, str]:
    app = await make_app(event_log, slug)
    saved = await channel.call(
        app.id, SaveScript(name="s", source="return ctx.app.slug"), 10
    )
    assert isinstance(saved, Done), saved
    added = await channel.call(
        app.id, AddRoute(script_id=saved.result["id"], method="GET", path="/"), 10
    )
    assert isinstance(added, Done), added
    return app.id, added.result["id"]


def get(route_id: str, n: int) -> Invoke:
    return Invoke(
        execution_id=f"x{n}",
        route_id=route_id,
        request=RequestRecord(method="GET", path="/"),
    )


async def test_calls_over_the_channel_reach_the_app(
    event_log: EventLog, channel: ChannelClient
) -> None:
    app_id, route_id = await routed_app(event_log, channel, "one")
    replies = await asyncio.gather(
        *(channel.call(app_id, get(route_id, n), 10) for n in range(50))
    )
    assert all(isinstance(r, HttpReply) and r.body == b"one" for r in replies)


async def test_unknown_app_is_not_found(channel: ChannelClient) -> None:
    reply = await channel.call("no-such-app", get("r", 1), 10)
    assert isinstance(reply, Failure)
    assert reply.code == "not_found"


@pytest.mark.parametrize("host_settings", [{"app_host_max_active": 2}])
async def test_least_recently_used_app_is_passivated_over_the_cap(
    event_log: EventLog, host: AppHost, channel: ChannelClient
) -> None:
    apps = [await routed_app(event_log, channel, f"lru-{n}") for n in range(3)]
    assert host.stats()["active_apps"] == [apps[1][0], apps[2][0]]
    reply = await channel.call(apps[0][0], get(apps[0][1], 9), 10)  # activates again
    assert isinstance(reply, HttpReply)
    assert reply.body == b"lru-0"
    assert host.stats()["active_apps"] == [apps[2][0], apps[0][0]]


@pytest.mark.parametrize("host_settings", [{"app_idle_timeout_s": 1}])
async def test_idle_apps_are_passivated_and_come_back(
    event_log: EventLog, host: AppHost, channel: ChannelClient
) -> None:
    app_id, route_id = await routed_app(event_log, channel, "idle")
    assert host.stats()["active_apps"] == [app_id]
    for _ in range(40):
        await asyncio.sleep(0.1)
        if not host.stats()["active_apps"]:
            break
    assert host.stats()["active_apps"] == []
    reply = await channel.call(app_id, get(route_id, 2), 10)
    assert isinstance(reply, HttpReply)
    assert reply.body == b"idle"


async def test_a_peer_without_the_cluster_secret_is_refused(
    event_log: EventLog, host: AppHost
) -> None:
    app = await make_app(event_log, "guarded")
    assert host.address is not None
    intruder = await open_channel(*host.address, "a guess")
    reply = await intruder.call(app.id, SaveScript(name="s", source="return 1"), 5)
    assert isinstance(reply, Failure), reply
    assert reply.kind == "ActorUnavailable"
    assert await event_log.read_stream(f"app-{app.id}") == [], "the call ran"
    assert host.stats()["active_apps"] == []


async def test_a_raw_call_frame_without_a_proof_is_refused(
    event_log: EventLog, host: AppHost
) -> None:
    app = await make_app(event_log, "raw")
    assert host.address is not None
    reader, writer = await asyncio.open_connection(*host.address)
    challenge = await reader.readexactly(4 + 32)
    assert len(challenge) == 36
    call = Call(1, app.id, 5000, SaveScript(name="s", source="return 1"))
    writer.write(encode_frame(call))
    await writer.drain()
    assert await reader.read() == b"", "the host answered a call without a proof"
    writer.close()
    assert await event_log.read_stream(f"app-{app.id}") == []
