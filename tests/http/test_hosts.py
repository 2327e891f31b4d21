"""Hosts dying under load: a killed AppHost process, and a script that spins in C
past the hard deadline (the second sandbox layer), up to quarantine."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest

from picloud.hosting._remote import call_remote
from picloud.http.ingress import EXECUTION_HEADER
from picloud.server import Server
from tests.http.helpers import Api, make_app, make_route

pytestmark = [pytest.mark.ray, pytest.mark.server]

# Building a million numbers takes ~0.07 s of hooked Lua; sorting them is one C
# call of ~0.6 s in which no hook fires, so only the watchdog can stop it.
SPIN_IN_C = """
local t = {}
for i = 1, 1000000 do t[i] = (i * 7919) % 1000003 end
table.sort(t)
return "finished"
"""
HARD_DEADLINE_S = 0.3


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    return {
        "script_timeout_ms": 250,
        "script_hard_deadline_grace_ms": 50,
        "host_crash_quarantine_after": 2,
        "app_hosts": 2,
    }


def host_of(server: Server, app_id: str) -> str:
    assert server.services is not None
    return server.services.hosts.link_for(app_id).name


async def host_pid(server: Server, app_id: str) -> int:
    assert server.services is not None
    return await server.services.hosts.link_for(app_id).pid()


async def host_nice(server: Server, app_id: str) -> int:
    """The nice value of the thread that runs the app's host's event loop."""
    assert server.services is not None
    handle = await server.services.hosts.link_for(app_id).actor(10)
    stats = await call_remote(handle.stats.remote(), what="stats", seconds=10)
    return int(stats["nice"])


async def wait_until_answers(api: Api, path: str, within: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        status, _ = await api.call("GET", path)
        if status == 200:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} did not answer 200 within {within}s")


async def executions(api: Api, slug: str) -> set[str]:
    seen: set[str] = set()
    cursor = ""
    while True:
        status, page = await api.call(
            "GET", f"/api/v1/admin/apps/{slug}/executions?limit=500&cursor={cursor}"
        )
        assert status == 200, page
        seen |= {item["id"] for item in page["items"]}
        if page["cursor"] is None:
            return seen
        cursor = page["cursor"]


async def check_nothing_acknowledged_lost(
    api: Api, outcomes: list[tuple[float, int, str, str]], killed_at: float
) -> None:
    """Every acknowledged write is stored with its record; a run that wrote
    nothing answered before its record was durable, so the kill may take the
    records of the last commit interval, and no older ones."""
    recorded = await executions(api, "sturdy")
    acknowledged = [o for o in outcomes if o[1] == 200]
    lost = [o for o in acknowledged if o[2] not in recorded]
    lost_writes = [o for o in lost if o[3] == "/write"]
    assert not lost_writes, f"{len(lost_writes)} acknowledged writes were lost"
    assert all(t > killed_at - 0.5 for t, _, _, _ in lost), [
        round(killed_at - t, 3) for t, _, _, _ in lost
    ]
    before_kill = [o for o in acknowledged if o[3] == "/write" and o[0] < killed_at]
    for _, _, execution, _ in before_kill[-20:]:  # the writes themselves too
        path = f"/api/v1/admin/apps/sturdy/kv/w/{execution}"
        assert await api.call("GET", path) == (200, 1), execution


async def test_killed_host_comes_back_within_5s_and_loses_no_acknowledged_write(
    api: Api, server: Server
) -> None:
    app = await make_app(api, "sturdy")
    write = 'kv.collection("w"):set(ctx.execution_id, 1) return "ok"'
    await make_route(api, "sturdy", write, path="/write", name="write")
    await make_route(api, "sturdy", 'return "ok"', path="/read", name="read")
    assert await api.call("GET", "/apps/sturdy/read") == (200, "ok")
    pid = await host_pid(server, app["id"])
    # (when answered, status, execution id, path) of every request
    outcomes: list[tuple[float, int, str, str]] = []
    stop = asyncio.Event()

    async def stream(path: str) -> None:
        while not stop.is_set():
            status, _ = await api.call("GET", f"/apps/sturdy{path}")
            execution = api.last_headers.get(EXECUTION_HEADER, "")
            outcomes.append((time.monotonic(), status, execution, path))

    clients = [asyncio.create_task(stream(path)) for path in ["/write", "/read"] * 2]
    await asyncio.sleep(0.5)
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    back_after = await wait_until_answers(api, "/apps/sturdy/read", within=5.0)
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*clients)

    assert await host_pid(server, app["id"]) != pid  # Ray restarted the host
    # Ray starts workers at nice 15; a host serves requests at the usual 0.
    assert await host_nice(server, app["id"]) == 0
    assert back_after + 0.2 < 5.0
    failures = [status for _, status, _, _ in outcomes if status != 200]
    assert all(status in (502, 503, 504) for status in failures), failures
    assert any(t > killed_at and status == 200 for t, status, _, _ in outcomes)
    await check_nothing_acknowledged_lost(api, outcomes, killed_at)


async def test_spinning_in_c_past_the_hard_deadline_kills_the_host_then_quarantines(
    api: Api, server: Server
) -> None:
    bad = await make_app(api, "spinner")
    await make_route(api, "spinner", SPIN_IN_C, path="/")
    neighbour = None
    for n in range(20):  # an app that shares the spinner's host
        candidate = await make_app(api, f"neighbour-{n}")
        if host_of(server, candidate["id"]) == host_of(server, bad["id"]):
            neighbour = candidate
            break
    assert neighbour is not None
    await make_route(api, neighbour["slug"], 'return "fine"', path="/")
    neighbour_path = f"/apps/{neighbour['slug']}/"
    assert await api.call("GET", neighbour_path) == (200, "fine")

    for offence in (1, 2):
        shared_pid = await host_pid(server, bad["id"])
        started = time.monotonic()
        status, body = await api.call("GET", "/apps/spinner/")
        took = time.monotonic() - started
        assert status in (500, 502, 503), (offence, status, body)
        assert took < HARD_DEADLINE_S + 3.0, took
        await wait_until_answers(api, neighbour_path, within=15.0)
        if offence == 1:
            assert await host_pid(server, neighbour["id"]) != shared_pid

    # Two kills: the app is quarantined onto a host of its own.
    deadline = time.monotonic() + 60  # two host restarts by Ray, on a busy machine
    while time.monotonic() < deadline:
        if host_of(server, bad["id"]).startswith("picloud-quarantine-"):
            break
        await asyncio.sleep(0.1)
    assert host_of(server, bad["id"]) == f"picloud-quarantine-{bad['id']}"
    neighbour_pid = await host_pid(server, neighbour["id"])
    status, _ = await api.call("GET", "/apps/spinner/")
    assert status in (500, 502, 503)
    assert await api.call("GET", neighbour_path) == (200, "fine")
    assert await host_pid(server, neighbour["id"]) == neighbour_pid  # untouched


async def test_the_hosts_endpoint_lists_the_live_hosts_and_their_apps(
    api: Api, server: Server
) -> None:
    await make_app(api, "listed")
    await make_route(api, "listed", 'return "here"', path="/")
    assert await api.call("GET", "/apps/listed/") == (200, "here")
    status, hosts = await api.call("GET", "/api/v1/admin/hosts")
    assert status == 200, hosts
    items = hosts["items"]
    assert len(items) == 2
    assert len({h["node_id"] for h in items}) == 1  # one node, its two hosts
    assert all(h["name"].startswith("picloud-host-") for h in items)
    assert all(h["address"].startswith("127.0.0.1:") for h in items)  # loopback
    assert sum(h["active_apps"] for h in items) == 1
    status, _ = await api.call(
        "GET", "/api/v1/admin/hosts", headers={"Authorization": "Bearer nope"}
    )
    assert status == 401
