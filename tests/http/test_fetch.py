"""``http.fetch`` over a real server: a target aiohttp server of the test's
own on loopback (allowed by ``PICLOUD_FETCH_ALLOW_LOOPBACK_PORTS``, off by
default), the SSRF refusals (no packet leaves for 10.x or the metadata
address: they are refused before any connection), the app's allowlist, each
limit named in its error, and a retried commit that does not fetch twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from picloud.events import EventMeta, utcnow
from picloud.events.app import ExecutionAbandoned
from picloud.server import Server
from picloud.store import CommitSignals, EventLog
from picloud.store._pool import create_pool
from tests.http.helpers import (
    Api,
    Identity,
    eventually,
    make_app,
    make_route,
    server_settings,
)

pytestmark = [pytest.mark.ray, pytest.mark.server]


@dataclass
class Target:
    """The test's own HTTP server, on loopback."""

    port: int = 0
    hits: dict[str, int] = field(default_factory=dict)
    on_hit: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _target_app(target: Target, picloud_port: list[int]) -> web.Application:
    async def count(request: web.Request) -> None:
        target.hits[request.path] = target.hits.get(request.path, 0) + 1
        hook = target.on_hit.get(request.path)
        if hook is not None:
            await hook()

    async def hello(request: web.Request) -> web.Response:
        await count(request)
        return web.Response(text="hi", headers={"X-Up": "1"})

    async def echo(request: web.Request) -> web.Response:
        await count(request)
        return web.json_response(
            {
                "method": request.method,
                "token": request.headers.get("Authorization"),
                "type": request.headers.get("Content-Type"),
                "body": (await request.read()).decode(),
            },
            status=201,
        )

    async def redirect(request: web.Request) -> web.Response:
        await count(request)
        where = request.query["to"]
        if where == "loopback":  # PiCloud's own admin port: not allowed
            where = f"http://127.0.0.1:{picloud_port[0]}/healthz"
        raise web.HTTPFound(where)

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 10_000)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/loop", loop)
    app.router.add_get("/big", big)
    app.router.add_get("/slow", slow)
    app.router.add_post("/once", hello)
    return app


@pytest.fixture(scope="module")
async def target() -> AsyncIterator[tuple[Target, list[int]]]:
    state, picloud_port = Target(), [0]
    runner = web.AppRunner(_target_app(state, picloud_port), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = int(runner.addresses[0][1])
    yield state, picloud_port
    await runner.cleanup()


@pytest.fixture(scope="module")
def module_overrides(target: tuple[Target, list[int]]) -> dict[str, Any]:
    return {
        "fetch_allow_loopback_ports": str(target[0].port),
        "fetch_max_response_bytes": 4096,
        "fetch_max_request_bytes": 1024,
        "fetch_max_redirects": 2,
        "fetch_max_calls_per_run": 3,
        "delivery_wake_interval_ms": 200,
    }


@pytest.fixture
def server(shared_server: Server, target: tuple[Target, list[int]]) -> Server:
    assert shared_server.port is not None
    target[1][0] = shared_server.port
    return shared_server


@pytest.fixture
def admin(shared_admin: Identity) -> Identity:
    return shared_admin


@pytest.fixture
def site(target: tuple[Target, list[int]]) -> Target:
    return target[0]


async def test_a_script_fetches_and_reads_the_answer(api: Api, site: Target) -> None:
    await make_app(api, "fetcher")
    source = f"""
    local r = http.fetch("{site.url}/hello")
    local p = http.fetch("{site.url}/echo", {{
      method = "POST", headers = {{Authorization = "Bearer t0k"}},
      body = {{n = 1}}, timeout_ms = 2000}})
    return {{status = r.status, body = r.body, up = r.headers["x-up"],
             echoed = json.decode(p.body), created = p.status}}
    """
    await make_route(api, "fetcher", source, path="/go")
    status, body = await api.call("GET", "/apps/fetcher/go")
    assert status == 200, body
    assert body == {
        "status": 200,
        "body": "hi",
        "up": "1",
        "created": 201,
        "echoed": {
            "method": "POST",
            "token": "Bearer t0k",
            "type": "application/json",
            "body": '{"n":1}',
        },
    }


def _probe(url: str) -> str:
    """A script that answers the error http.fetch raised (pcall), or 'fetched'."""
    return (
        f'local ok, e = pcall(http.fetch, "{url}")\n'
        'if ok then return {error = "fetched"} end\n'
        "return {error = e}"
    )


async def _error_of(api: Api, slug: str, url: str) -> str:
    _, scripts = await api.call("GET", f"/api/v1/admin/apps/{slug}/scripts")
    [script] = scripts["items"]
    status, _ = await api.call(
        "PUT", f"/api/v1/admin/scripts/{script['id']}", {"source": _probe(url)}
    )
    assert status == 200
    status, body = await api.call("GET", f"/apps/{slug}/probe")
    assert status == 200, body
    error: str = body["error"]
    return error


async def test_private_loopback_and_metadata_addresses_are_refused(
    api: Api, server: Server, site: Target
) -> None:
    await make_app(api, "ssrf")
    await make_route(api, "ssrf", _probe(site.url), path="/probe")
    admin = server.port
    cases = {
        f"http://127.0.0.1:{admin}/healthz": "127.0.0.1 is a loopback address",
        f"http://[::1]:{admin}/": "::1 is a loopback address",
        "http://10.1.2.3/": "10.1.2.3 is a private address",
        "http://169.254.169.254/latest/meta-data/": "link-local",
        "http://0.0.0.0:80/": "0.0.0.0 is a private address",
        f"http://localhost:{admin}/healthz": (
            "localhost resolves to a loopback address"
        ),
        f"{site.url}/redirect?to=loopback": "127.0.0.1 is a loopback address",
        f"{site.url}/redirect?to=http://localhost:{admin}/": (
            "localhost resolves to a loopback address"
        ),
        "ftp://example.test/file": "only http and https",
        "file:///etc/passwd": "only http and https",
    }
    for url, fragment in cases.items():
        error = await _error_of(api, "ssrf", url)
        assert error.startswith("http.fetch: "), (url, error)
        assert fragment in error, (url, error)
    assert site.hits.get("/redirect", 0) == 2  # the first hop went; no second


async def test_the_apps_allowlist_decides_which_hosts(api: Api, site: Target) -> None:
    await make_app(api, "allow")
    await make_route(api, "allow", _probe(site.url), path="/probe")
    status, settings = await api.call(
        "PUT",
        "/api/v1/admin/apps/allow/settings/fetch",
        {"allowed_hosts": ["127.0.0.1", "*.example.org"]},
    )
    assert status == 200, settings
    assert settings["fetch_hosts_in_force"] == ["*.example.org", "127.0.0.1"]
    assert await _error_of(api, "allow", f"{site.url}/hello") == "fetched"
    local = f"http://localhost:{site.port}/hello"
    error = await _error_of(api, "allow", local)
    assert "host 'localhost' is not in the app's fetch allowlist" in error
    status, body = await api.call(
        "PUT",
        "/api/v1/admin/apps/allow/settings/fetch",
        {"allowed_hosts": ["http://bad/"]},
    )
    assert (status, body["error"]["code"]) == (400, "invalid_input")
    await api.call("DELETE", "/api/v1/admin/apps/allow/settings/fetch")
    _, settings = await api.call("GET", "/api/v1/admin/apps/allow/settings")
    assert settings["fetch_allowed_hosts"] is None
    assert await _error_of(api, "allow", local) == "fetched"  # loopback port allowed


async def test_each_limit_is_named_in_its_error(api: Api, site: Target) -> None:
    await make_app(api, "limits")
    await make_route(api, "limits", _probe(site.url), path="/probe")
    error = await _error_of(api, "limits", f"{site.url}/big")
    assert "fetch_max_response_bytes limit (4096 bytes)" in error
    error = await _error_of(api, "limits", f"{site.url}/loop")
    assert "fetch_max_redirects limit (2 redirects)" in error
    source = f"""
    local errors = {{}}
    local ok, e = pcall(http.fetch, "{site.url}/echo",
      {{method = "POST", body = string.rep("x", 2000)}})
    errors.size = e
    ok, e = pcall(http.fetch, "{site.url}/slow", {{timeout_ms = 200}})
    errors.slow = e
    for i = 1, 3 do ok, e = pcall(http.fetch, "{site.url}/hello") end
    errors.calls = e
    return errors
    """
    await make_route(api, "limits", source, path="/many", name="many")
    status, errors = await api.call("GET", "/apps/limits/many")
    assert status == 200, errors
    assert "fetch_max_request_bytes limit (1024 bytes)" in errors["size"]
    assert "no answer within 200 ms" in errors["slow"]
    assert "fetch_max_calls_per_run limit (3 per run)" in errors["calls"]


async def test_an_unhandled_fetch_error_fails_the_run(api: Api) -> None:
    await make_app(api, "unhandled")
    await make_route(api, "unhandled", 'http.fetch("http://10.0.0.1/")', path="/x")
    status, body = await api.call("GET", "/apps/unhandled/x")
    assert status == 500
    execution = body["error"]["execution_id"]
    _, log = await api.call("GET", "/api/v1/admin/apps/unhandled/executions")
    [entry] = [e for e in log["items"] if e["id"] == execution]
    assert "http.fetch: 10.0.0.1 is a private address" in entry["error"]


async def test_a_retried_commit_replays_the_fetch(
    api: Api, server: Server, site: Target
) -> None:
    """The async run's outcome cannot be committed (another writer took its
    stream version: as when a commit fails), so the same attempt runs again;
    it gets the recorded answer and the target sees one request."""
    app = await make_app(api, "journal")
    source = f"""
    local r = http.fetch("{site.url}/once", {{method = "POST"}})
    kv.collection("out"):set("answer", {{body = r.body, attempt = ctx.attempt}})
    """
    await make_route(api, "journal", source, "POST", "/work", dispatch_mode="async")
    pool = await create_pool(server.dsn, server_settings())
    log = EventLog(pool, CommitSignals())
    stream = f"app-{app['id']}"

    async def intrude() -> None:
        # Another writer appends to the app's stream while the run waits on
        # its fetch: the run's commit then fails its version check.
        version = await log.stream_version(stream)
        event = ExecutionAbandoned(
            at=utcnow(), app_id=app["id"], execution_id="intruder", reason="test"
        )
        await log.append(stream, version, [event], EventMeta(actor="test"))
        site.on_hit.pop("/once", None)

    site.on_hit["/once"] = intrude
    try:
        status, _ = await api.call("POST", "/apps/journal/work", {})
        assert status == 202

        async def answered() -> bool:
            status, _ = await api.call(
                "GET", "/api/v1/admin/apps/journal/kv/out/answer"
            )
            return status == 200

        await eventually(answered)
        types = [r.type for r in await log.read_stream(stream)]
    finally:
        await pool.close()
    _, value = await api.call("GET", "/api/v1/admin/apps/journal/kv/out/answer")
    assert value == {"body": "hi", "attempt": 1}
    assert site.hits["/once"] == 1
    _, runs = await api.call("GET", "/api/v1/admin/apps/journal/executions")
    assert [(e["attempt"], e["status"]) for e in runs["items"]] == [(1, "ok")]
    # The intruder's event came first: the run's first commit cannot have held.
    assert types.index("execution.abandoned.v1") < types.index("invocation.recorded.v1")
