"""With PICLOUD_DOMAIN set, ``Host: {slug}.{domain}`` on the apps listener
reaches an app at any path; the admin listener never serves app content."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from picloud.server import Server
from tests.http.helpers import Api, make_app, make_route

pytestmark = [pytest.mark.ray, pytest.mark.server]


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    return {"domain": "apps.example.test"}


async def test_host_header_routes_to_the_app(api: Api, server: Server) -> None:
    await make_app(api, "hosted")
    await make_route(api, "hosted", "return ctx.request.path", path="/where/{x}")
    host = {"Host": "hosted.apps.example.test:8081"}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.apps_url}/where/now", headers=host) as r:
            assert (r.status, await r.text()) == (200, "/where/now")
        async with session.get(f"{server.url}/where/now", headers=host) as r:
            assert r.status == 404, "the admin listener served an app"
            assert (await r.json())["error"]["code"] == "not_found"
    assert await api.call("GET", "/apps/hosted/where/too") == (200, "/where/too")
    async with aiohttp.ClientSession() as session:
        nobody = {"Host": "nobody.apps.example.test"}
        async with session.get(f"{server.apps_url}/where/now", headers=nobody) as r:
            assert r.status == 404
            assert (await r.json())["error"]["code"] == "not_found"
    status, _ = await api.call("GET", "/healthz")  # the admin API is unaffected
    assert status == 200
