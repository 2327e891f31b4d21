"""Retry policies of async routes and triggers, ``ctx.attempt``, and the
capabilities a route grants its script, over a real server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.helpers import (
    Api,
    eventually,
    make_app,
    make_route,
    make_script,
)

pytestmark = [pytest.mark.ray, pytest.mark.server, pytest.mark.shared_server]


@pytest.fixture(scope="module")
def module_overrides() -> dict[str, Any]:
    # Defaults a policy must override: two attempts, a long pause.
    return {
        "trigger_retry_max_attempts": 2,
        "trigger_retry_base_ms": 60_000,
        "delivery_wake_interval_ms": 200,
    }


FAST_THREE = {"max_attempts": 3, "base_ms": 20, "max_ms": 40, "jitter": 0.0}


async def test_an_async_routes_policy_overrides_the_defaults(api: Api) -> None:
    await make_app(api, "retrying")
    source = (
        'if ctx.attempt < 3 then error("attempt " .. ctx.attempt) end\n'
        'kv.collection("r"):set("done", ctx.attempt)'
    )
    _, route = await make_route(
        api,
        "retrying",
        source,
        method="POST",
        path="/work",
        dispatch_mode="async",
        retry=FAST_THREE,
    )
    assert route["retry"] == FAST_THREE
    status, accepted = await api.call("POST", "/apps/retrying/work", {})
    assert status == 202

    async def done() -> bool:
        status, _ = await api.call("GET", "/api/v1/admin/apps/retrying/kv/r/done")
        return status == 200

    # The defaults would stop after 2 attempts, a minute apart.
    await eventually(done, within=10)
    _, value = await api.call("GET", "/api/v1/admin/apps/retrying/kv/r/done")
    assert value == 3
    _, log = await api.call("GET", "/api/v1/admin/apps/retrying/executions")
    runs = sorted((e["attempt"], e["status"]) for e in log["items"])
    assert runs == [(1, "error"), (2, "error"), (3, "ok")]
    first = accepted["execution_id"]
    assert {e["id"] for e in log["items"]} == {first, f"{first}-2", f"{first}-3"}
    _, routes = await api.call("GET", "/api/v1/admin/apps/retrying/routes")
    assert routes["items"][0]["retry"] == FAST_THREE


async def test_a_triggers_policy_dead_letters_after_its_own_attempts(
    api: Api,
) -> None:
    await make_app(api, "once")
    failing = await make_script(api, "once", 'error("no " .. ctx.attempt)', name="h")
    status, trigger = await api.call(
        "POST",
        "/api/v1/admin/apps/once/triggers/kv",
        {"script_id": failing["id"], "retry": {"max_attempts": 1}},
    )
    assert status == 201, trigger
    assert trigger["retry"] == {"max_attempts": 1}
    await api.call("PUT", "/api/v1/admin/apps/once/kv/jobs/a", 1)

    async def lettered() -> bool:
        _, page = await api.call("GET", "/api/v1/admin/apps/once/dead-letters")
        return len(page["items"]) == 1

    await eventually(lettered)
    _, page = await api.call("GET", "/api/v1/admin/apps/once/dead-letters")
    assert page["items"][0]["attempts"] == 1
    assert "no 1" in page["items"][0]["error"]


async def test_ctx_attempt_is_one_in_a_sync_run(api: Api) -> None:
    await make_app(api, "attempts")
    await make_route(api, "attempts", "return {attempt = ctx.attempt}", path="/a")
    assert await api.call("GET", "/apps/attempts/a") == (200, {"attempt": 1})


@pytest.mark.parametrize(
    ("route", "fragment"),
    [
        ({"retry": {"max_attempts": 2}}, "sync route is never retried"),
        ({"dispatch_mode": "async", "retry": {"max_attempts": 0}}, "max_attempts"),
        ({"dispatch_mode": "async", "retry": {"max_attempts": 101}}, "max_attempts"),
        ({"dispatch_mode": "async", "retry": {"jitter": 1.5}}, "jitter"),
        ({"dispatch_mode": "async", "retry": {"base_ms": 0}}, "base_ms"),
        (
            {"dispatch_mode": "async", "retry": {"base_ms": 100, "max_ms": 50}},
            "max_ms",
        ),
        # the module's default base (60 s) is above this max
        ({"dispatch_mode": "async", "retry": {"max_ms": 1000}}, "max_ms"),
        ({"dispatch_mode": "async", "retry": {"tries": 3}}, "tries"),
        ({"capabilities": ["users:manage"]}, "granted"),
        ({"capabilities": ["nonsense"]}, "unknown capability"),
    ],
)
async def test_route_policies_and_grants_are_checked(
    api: Api, route: dict[str, Any], fragment: str
) -> None:
    slug = "checked"
    await api.call("POST", "/api/v1/admin/apps", {"slug": slug, "name": slug})
    script = await api.call("GET", f"/api/v1/admin/apps/{slug}/scripts")
    if not script[1]["items"]:
        await make_script(api, slug, "return 1")
    _, scripts = await api.call("GET", f"/api/v1/admin/apps/{slug}/scripts")
    script_id = scripts["items"][0]["id"]
    status, body = await api.call(
        "POST",
        f"/api/v1/admin/scripts/{script_id}/routes",
        {"method": "POST", "path": "/x", **route},
    )
    assert (status, body["error"]["code"]) == (400, "invalid_input"), body
    assert fragment in body["error"]["message"], body


async def test_a_trigger_policy_is_checked(api: Api) -> None:
    await make_app(api, "tchecked")
    script = await make_script(api, "tchecked", "return 1")
    status, body = await api.call(
        "POST",
        "/api/v1/admin/apps/tchecked/triggers/docs",
        {"script_id": script["id"], "retry": {"base_ms": 5000, "max_ms": 10}},
    )
    assert (status, body["error"]["code"]) == (400, "invalid_input")
    assert "max_ms" in body["error"]["message"]


async def test_a_route_grants_its_script_capabilities(api: Api) -> None:
    await make_app(api, "granted")
    source = "return {letters = #dead_letters.list{}.items}"
    _, route = await make_route(
        api, "granted", source, path="/peek", capabilities=["dead_letters:read"]
    )
    assert route["capabilities"] == ["dead_letters:read"]
    assert await api.call("GET", "/apps/granted/peek") == (200, {"letters": 0})
    await make_route(
        api,
        "granted",
        'return {v = kv.collection("c"):get("k")}',
        path="/kv",
        name="kv",
    )
    # A grant replaces the default: this route may read dead letters, not KV.
    await make_route(
        api,
        "granted",
        'return kv.collection("c"):get("k")',
        path="/nokv",
        name="nokv",
        capabilities=["dead_letters:read"],
    )
    assert (await api.call("GET", "/apps/granted/kv"))[0] == 200
    status, body = await api.call("GET", "/apps/granted/nokv")
    assert status == 500
    failed = body["error"]["execution_id"]
    _, log = await api.call("GET", "/api/v1/admin/apps/granted/executions?status=error")
    [entry] = [e for e in log["items"] if e["id"] == failed]
    assert "kv:read" in entry["error"]
