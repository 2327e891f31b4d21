"""Apps and the admin never share an origin, and a script never gets
PiCloud's credentials; nothing stored for a run keeps a caller's."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec

from picloud.events.app import InvocationAccepted
from picloud.server import Server
from tests.http.helpers import Api, Identity, login, make_app, make_route

ECHO_HEADERS = "return {seen = ctx.request.headers}"


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers) as response,
    ):
        body = await response.read()
        return response.status, msgspec.json.decode(body) if body else None


async def test_each_listener_serves_only_its_own(api: Api, server: Server) -> None:
    await make_app(api, "site")
    await make_route(api, "site", 'return "app content"', path="/page")
    assert await api.call("GET", "/apps/site/page") == (200, "app content")
    status, body = await _get(f"{server.url}/apps/site/page")
    assert status == 404, "the admin listener served app content"
    assert body["error"]["code"] == "not_found"
    status, body = await _get(f"{server.apps_url}/api/v1/admin/apps")
    assert status == 404, "the apps listener served the admin API"
    assert body["error"]["code"] == "not_found"
    status, _ = await _get(f"{server.apps_url}/healthz")
    assert status == 404


async def test_a_script_never_sees_picloud_credentials(
    api: Api, server: Server, admin: Identity
) -> None:
    await make_app(api, "snoop")
    await make_route(api, "snoop", ECHO_HEADERS, path="/h")
    signed_in = await login(server.url, admin.username, admin.password)
    session = signed_in.cookies["picloud_session"].value
    csrf = signed_in.cookies["picloud_csrf"].value
    cookie = f"theme=dark; picloud_session={session}; picloud_csrf={csrf}; b=2"
    assert admin.key is not None
    status, body = await _get(
        f"{server.apps_url}/apps/snoop/h",
        {"Cookie": cookie, "X-CSRF-Token": csrf, **admin.bearer},
    )
    assert status == 200, body
    seen = body["seen"]
    assert session not in str(seen)
    assert csrf not in str(seen)
    assert admin.key not in str(seen)
    assert seen["cookie"] == "theme=dark; b=2", "the app's own cookies are kept"
    status, body = await _get(
        f"{server.apps_url}/apps/snoop/h", {"Authorization": "Bearer the-app-own"}
    )
    assert body["seen"]["authorization"] == "Bearer the-app-own"
    status, _ = await _get(f"{server.url}/api/v1/admin/users", {"Cookie": cookie})
    assert status == 200, "sanity: the cookie does sign in on the admin listener"


async def test_the_session_cookie_is_strict_http_only_and_host_only(
    server: Server, admin: Identity
) -> None:
    signed_in = await login(server.url, admin.username, admin.password)
    morsel = signed_in.cookies["picloud_session"]
    assert morsel["httponly"]
    assert morsel["samesite"] == "Strict"
    assert not morsel["domain"], "host-only: no Domain attribute"
    behind_https = await login(
        server.url,
        admin.username,
        admin.password,
        headers={"X-Forwarded-Proto": "https"},
    )
    assert behind_https.cookies["picloud_session"]["secure"]


async def test_a_stored_request_keeps_no_credentials(api: Api, server: Server) -> None:
    await make_app(api, "later")
    await make_route(
        api, "later", "return {}", method="POST", path="/job", dispatch_mode="async"
    )
    status, _ = await api.call(
        "POST",
        "/apps/later/job",
        raw=b"{}",
        headers={
            "Authorization": "Bearer someone-else-s-token",
            "Cookie": "sid=abc",
            "Proxy-Authorization": "Basic eDp5",
            "X-Kept": "yes",
        },
    )
    assert status == 202
    assert server.services is not None
    log = server.services.log
    app_id = (await api.call("GET", "/api/v1/admin/apps/later"))[1]["id"]
    stored = [
        r.event
        for r in await log.read_stream(f"app-{app_id}")
        if isinstance(r.event, InvocationAccepted)
    ]
    assert len(stored) == 1
    headers = stored[0].request.headers
    assert headers["authorization"] == "[redacted]"
    assert headers["cookie"] == "[redacted]"
    assert headers["proxy-authorization"] == "[redacted]"
    assert headers["x-kept"] == "yes"
    raw = await log.pool.fetchval(
        "SELECT string_agg(data::text, '') FROM events WHERE stream = $1",
        f"app-{app_id}",
    )
    for secret in ("someone-else-s-token", "sid=abc", "eDp5"):
        assert secret not in raw
