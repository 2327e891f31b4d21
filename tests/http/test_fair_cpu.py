"""Fair CPU over a real server: two clients calling a CPU hog do not stall an
app on the same host, and the hog's callers get 429 with Retry-After once its
app is over its budget (the figure is in bench/bench_neighbours.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from picloud.server import Server
from tests.http.helpers import Api, make_app, make_route


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    return {
        "app_hosts": 1,
        "script_timeout_ms": 1_500,
        "app_cpu_burst_ms": 500,
        "app_cpu_budget_ms_per_s": 250,
    }


async def _hog(url: str, until: float, statuses: list[int], retry: list[str]) -> None:
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < until:
            async with session.get(url) as response:
                await response.read()
                statuses.append(response.status)
                if response.status == 429:
                    retry.append(response.headers.get("Retry-After", ""))


async def test_a_hog_does_not_stall_its_neighbour(api: Api, server: Server) -> None:
    for slug in ("quiet", "hog"):
        await make_app(api, slug)
    await make_route(api, "quiet", 'return "hello"', path="/hello")
    await make_route(api, "hog", "while true do end", path="/spin")
    base = server.apps_url
    statuses: list[int] = []
    retry: list[str] = []
    until = time.monotonic() + 4
    hogs = [
        asyncio.ensure_future(_hog(f"{base}/apps/hog/spin", until, statuses, retry))
        for _ in range(2)
    ]
    await asyncio.sleep(0.5)
    latencies = []
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < until:
            started = time.perf_counter()
            async with session.get(f"{base}/apps/quiet/hello") as response:
                assert response.status == 200, await response.text()
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
    await asyncio.gather(*hogs)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    # Loose: a shared 2-core CI machine; stalled, it was ~800 ms (see the bench).
    assert p99 < 0.25, f"neighbour p99 {p99 * 1000:.0f} ms"
    assert 500 in statuses, "the hog ran into its time limit"
    assert 429 in statuses, "the hog's app was never throttled"
    assert all(value.isdigit() and int(value) >= 1 for value in retry)
