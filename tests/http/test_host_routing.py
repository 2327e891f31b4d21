"""With PICLOUD_DOMAIN set, ``Host: {slug}.{domain}`` reaches an app at any path."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.helpers import Api, make_app, make_route

pytestmark = [pytest.mark.ray, pytest.mark.server]


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    return {"domain": "apps.example.test"}


async def test_host_header_routes_to_the_app(api: Api) -> None:
    await make_app(api, "hosted")
    await make_route(api, "hosted", "return ctx.request.path", path="/where/{x}")
    host = {"Host": "hosted.apps.example.test:8080"}
    assert await api.call("GET", "/where/now", headers=host) == (200, "/where/now")
    assert await api.call("GET", "/apps/hosted/where/too") == (200, "/where/too")
    status, body = await api.call(
        "GET", "/where/now", headers={"Host": "nobody.apps.example.test"}
    )
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, _ = await api.call("GET", "/healthz")  # other hosts keep the admin API
    assert status == 200
