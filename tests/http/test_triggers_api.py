"""Triggers and dead letters over HTTP: the admin API, the SDK, a server restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from picloud.server import Server
from tests.http.helpers import (
    Api,
    create_identity,
    make_app,
    make_route,
    make_script,
    server_settings,
)

pytestmark = [pytest.mark.ray, pytest.mark.server, pytest.mark.shared_server]


FAST = {
    "trigger_retry_base_ms": 100,
    "trigger_retry_jitter": 0.0,
    "trigger_retry_max_attempts": 2,
    "delivery_wake_interval_ms": 200,
}


@pytest.fixture(scope="module")
def module_overrides() -> dict[str, Any]:
    return FAST


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 15.0
) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def open_letters(api: Api, slug: str) -> int:
    """The apps list's count of the app's open dead letters."""
    status, listed = await api.call("GET", "/api/v1/admin/apps")
    assert status == 200
    [app] = [a for a in listed["items"] if a["slug"] == slug]
    count: int = app["dead_letters_unresolved"]
    return count


async def test_trigger_admin_api_validates_and_lists(api: Api) -> None:
    await make_app(api, "home")
    await make_app(api, "away")
    handler = await make_script(api, "home", "return 1", name="handler")
    module = await make_script(
        api, "home", "local M = {}\nreturn M", name="lib", kind="module"
    )
    foreign = await make_script(api, "away", "return 1", name="theirs")
    base = "/api/v1/admin/apps/home/triggers"
    cases: list[tuple[str, Any, int, str, str]] = [
        ("kv", {"script_id": "nope"}, 404, "not_found", "no script"),
        ("kv", {"script_id": foreign["id"]}, 400, "invalid_input", "another app"),
        ("kv", {"script_id": module["id"]}, 400, "invalid_input", "module"),
        (
            "kv",
            {"script_id": handler["id"], "ops": ["create"]},
            400,
            "invalid_input",
            "op",
        ),
        (
            "docs",
            {"script_id": handler["id"], "ops": ["set"]},
            400,
            "invalid_input",
            "op",
        ),
        (
            "kv",
            {"script_id": handler["id"], "collection": "bad name"},
            400,
            "invalid_input",
            "collection",
        ),
        (
            "dead_letter",
            {"script_id": handler["id"], "collection": "c"},
            400,
            "invalid_input",
            "collection",
        ),
        (
            "kv",
            {"script_id": handler["id"], "capabilities": ["users:manage"]},
            400,
            "invalid_input",
            "granted",
        ),
        (
            "kv",
            {"script_id": handler["id"], "colour": 1},
            400,
            "invalid_input",
            "colour",
        ),
    ]
    for kind, body, status, code, fragment in cases:
        got, answer = await api.call("POST", f"{base}/{kind}", body)
        assert (got, answer["error"]["code"]) == (status, code), (kind, body, answer)
        assert fragment in answer["error"]["message"], answer
    status, made = await api.call(
        "POST",
        f"{base}/kv",
        {"script_id": handler["id"], "ops": ["set"], "collection": "c"},
    )
    assert status == 201, made
    assert (made["kind"], made["ops"], made["collection"]) == ("kv", ["set"], "c")
    status, listed = await api.call("GET", base)
    assert [t["id"] for t in listed["items"]] == [made["id"]]
    status, _ = await api.call("DELETE", f"/api/v1/admin/triggers/{made['id']}")
    assert status == 204
    status, answer = await api.call("DELETE", f"/api/v1/admin/triggers/{made['id']}")
    assert status == 404
    assert (await api.call("GET", base))[1] == {"items": []}


async def test_dead_letters_over_http_and_from_the_sdk(api: Api) -> None:
    await make_app(api, "letters")
    failing = await make_script(
        api, "letters", 'error("cannot handle " .. ctx.event.key)', name="bad"
    )
    await api.call(
        "POST", "/api/v1/admin/apps/letters/triggers/kv", {"script_id": failing["id"]}
    )
    closer = await make_script(
        api,
        "letters",
        'kv.collection("closed"):set(ctx.event.dead_letter.id, true)\n'
        "dead_letters.resolve(ctx.event.dead_letter.id)",
        name="closer",
    )
    status, _ = await api.call(
        "POST",
        "/api/v1/admin/apps/letters/triggers/dead_letter",
        {
            "script_id": closer["id"],
            "capabilities": ["kv:write", "dead_letters:manage"],
        },
    )
    assert status == 201
    await api.call("PUT", "/api/v1/admin/apps/letters/kv/jobs/j1", {"n": 1})

    async def closed() -> bool:
        _, page = await api.call("GET", "/api/v1/admin/apps/letters/dead-letters")
        return bool(page["items"]) and page["items"][0]["resolution"] == "resolved"

    await eventually(closed)
    _, page = await api.call("GET", "/api/v1/admin/apps/letters/dead-letters")
    [letter] = page["items"]
    assert letter["attempts"] == 2
    assert "cannot handle j1" in letter["error"]
    assert letter["event"]["key"] == "j1"
    assert letter["resolved_by"] == "script"
    status, again = await api.call(
        "POST", f"/api/v1/admin/apps/letters/dead-letters/{letter['id']}/replay"
    )
    assert (status, again["error"]["code"]) == (409, "conflict")
    _, open_ = await api.call(
        "GET", "/api/v1/admin/apps/letters/dead-letters?resolved=false"
    )
    assert open_["items"] == []
    status, body = await api.call(
        "GET", "/api/v1/admin/apps/letters/dead-letters?resolved=maybe"
    )
    assert (status, body["error"]["code"]) == (400, "invalid_input")
    await make_route(
        api, "letters", "return dead_letters.list{}", path="/peek", name="peek"
    )
    status, body = await api.call("GET", "/apps/letters/peek")
    assert status == 500  # a public route is not granted dead_letters:read
    failed = body["error"]["execution_id"]
    _, log = await api.call("GET", "/api/v1/admin/apps/letters/executions?status=error")
    [entry] = [item for item in log["items"] if item["id"] == failed]
    assert "dead_letters:read" in entry["error"]


async def test_replay_and_resolve_over_http(api: Api) -> None:
    await make_app(api, "replays")
    handler = await make_script(
        api,
        "replays",
        'if kv.collection("cfg"):get("broken") then error("broken") end\n'
        'kv.collection("done"):set(ctx.event.key, true)',
        name="h",
    )
    await api.call(
        "POST",
        "/api/v1/admin/apps/replays/triggers/kv",
        {"script_id": handler["id"], "collection": "jobs"},
    )
    await api.call("PUT", "/api/v1/admin/apps/replays/kv/cfg/broken", True)
    await api.call("PUT", "/api/v1/admin/apps/replays/kv/jobs/a", 1)

    async def lettered() -> bool:
        _, page = await api.call("GET", "/api/v1/admin/apps/replays/dead-letters")
        return len(page["items"]) == 1

    await eventually(lettered)
    assert await open_letters(api, "replays") == 1
    _, page = await api.call("GET", "/api/v1/admin/apps/replays/dead-letters")
    letter_id = page["items"][0]["id"]
    await api.call("DELETE", "/api/v1/admin/apps/replays/kv/cfg/broken")
    status, replayed = await api.call(
        "POST", f"/api/v1/admin/apps/replays/dead-letters/{letter_id}/replay"
    )
    assert (status, replayed["resolution"]) == (200, "replayed")
    # A replayed letter is no longer open: a replay that fails again is a new one.
    assert await open_letters(api, "replays") == 0

    async def done() -> bool:
        status, _ = await api.call("GET", "/api/v1/admin/apps/replays/kv/done/a")
        return status == 200

    await eventually(done)
    status, resolved = await api.call(
        "POST", f"/api/v1/admin/apps/replays/dead-letters/{letter_id}/resolve"
    )
    assert (status, resolved["resolution"]) == (200, "resolved")
    assert resolved["resolved_by"]
    status, body = await api.call(
        "POST", "/api/v1/admin/apps/replays/dead-letters/nope/resolve"
    )
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_retries_scheduled_before_a_server_restart_still_happen(
    database: str, ray_session: None
) -> None:
    server = Server(server_settings(**FAST), database, owns_actors=True)
    await server.start()
    try:
        await _retry_across_restart(server, database)
    finally:
        await server.stop()


async def _retry_across_restart(server: Server, database: str) -> None:
    admin = await create_identity(server, "admin", admin=True)
    session = aiohttp.ClientSession()
    api = Api(session, server.url, admin.bearer, apps_base=server.apps_url)
    await make_app(api, "survivor")
    handler = await make_script(
        api,
        "survivor",
        'if not kv.collection("cfg"):get("ok") then error("not yet") end\n'
        'kv.collection("done"):set(ctx.event.key, true)',
        name="h",
    )
    await api.call(
        "POST",
        "/api/v1/admin/apps/survivor/triggers/kv",
        {"script_id": handler["id"], "collection": "jobs"},
    )
    await api.call("PUT", "/api/v1/admin/apps/survivor/kv/jobs/x", 1)

    async def first_attempt_failed() -> bool:
        _, log = await api.call(
            "GET", "/api/v1/admin/apps/survivor/executions?status=error"
        )
        return bool(log["items"])

    await eventually(first_attempt_failed)
    await api.call("PUT", "/api/v1/admin/apps/survivor/kv/cfg/ok", True)
    await session.close()
    await server.stop()  # the whole server goes, the retry still pending
    restarted = Server(
        server_settings(trigger_retry_base_ms=3_000, delivery_wake_interval_ms=200),
        database,
        owns_actors=True,
    )
    await restarted.start()
    try:
        async with aiohttp.ClientSession() as session:
            again = Api(session, restarted.url, api.headers)

            async def retried() -> bool:
                status, _ = await again.call(
                    "GET", "/api/v1/admin/apps/survivor/kv/done/x"
                )
                return status == 200

            await eventually(retried, within=30)
    finally:
        await restarted.stop()
