"""The execution log over a real server: one execution with its attempts and
dead letter, and the list's filters (unknown ones refused)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.http.helpers import (
    Api,
    eventually,
    make_app,
    make_route,
)

pytestmark = [pytest.mark.ray, pytest.mark.server, pytest.mark.shared_server]


BASE = "/api/v1/admin/apps/runs/executions"
LIST = "/api/v1/admin/apps/filtered/executions"


async def test_one_execution_with_its_attempts_and_dead_letter(api: Api) -> None:
    await make_app(api, "runs")
    await make_route(api, "runs", 'log.info("hello") return 1', path="/ok", name="ok")
    _, route = await make_route(
        api,
        "runs",
        'log.warn("try " .. ctx.attempt) error("always")',
        method="POST",
        path="/bad",
        name="bad",
        dispatch_mode="async",
        retry={"max_attempts": 2, "base_ms": 20, "jitter": 0.0},
    )
    await api.call("GET", "/apps/runs/ok")
    sync_id = api.last_headers["X-PiCloud-Execution-Id"]
    status, one = await api.call("GET", f"{BASE}/{sync_id}")
    assert status == 200, one
    assert (one["status"], one["dead_letter"]) == ("ok", None)
    assert one["execution"]["logs"][0]["message"] == "hello"
    assert [a["id"] for a in one["attempts"]] == [sync_id]
    _, accepted = await api.call("POST", "/apps/runs/bad", {})
    first = accepted["execution_id"]

    async def lettered() -> bool:
        _, found = await api.call("GET", f"{BASE}/{first}")
        return found["dead_letter"] is not None

    await eventually(lettered)
    _, found = await api.call("GET", f"{BASE}/{first}")
    assert found["status"] == "error"
    assert found["execution"]["error"].endswith("always")
    assert [(a["id"], a["attempt"]) for a in found["attempts"]] == [
        (first, 1),
        (f"{first}-2", 2),
    ]
    assert found["attempts"][1]["logs"][0]["message"] == "try 2"
    letter = found["dead_letter"]
    assert (letter["attempts"], letter["route_id"]) == (2, route["id"])
    _, second = await api.call("GET", f"{BASE}/{first}-2")
    assert second["execution"]["attempt"] == 2
    assert second["dead_letter"]["id"] == letter["id"]
    status, body = await api.call("GET", f"{BASE}/nope")
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_the_list_filters_and_refuses_unknown_filters(api: Api) -> None:
    await make_app(api, "filtered")
    ok, _ = await make_route(api, "filtered", "return 1", path="/a", name="a")
    bad, _ = await make_route(api, "filtered", 'error("x")', path="/b", name="b")
    start = datetime.now(UTC)
    for path in ("/a", "/a", "/b"):
        await api.call("GET", f"/apps/filtered{path}")
    end = datetime.now(UTC) + timedelta(seconds=1)

    async def ids(query: str) -> list[str]:
        status, page = await api.call("GET", f"{LIST}?{query}")
        assert status == 200, page
        return [e["script_id"] for e in page["items"]]

    assert await ids(f"script={ok['id']}") == [ok["id"], ok["id"]]
    assert await ids("status=error") == [bad["id"]]
    assert await ids(f"status=ok&script={bad['id']}") == []
    assert len(await ids("trigger=route:GET%20/a")) == 2
    assert await ids("trigger=async:") == []
    since = start.isoformat().replace("+00:00", "Z")
    assert (
        len(await ids(f"since={since}&until={end.isoformat()}".replace("+", "%2B")))
        == 3
    )
    later = end.isoformat().replace("+00:00", "Z")
    assert await ids(f"since={later}") == []
    for query, fragment in (
        ("stauts=ok", "unknown query parameter 'stauts'"),
        ("since=yesterday", "since must be an RFC 3339 time"),
        ("status=maybe", "status must be"),
    ):
        status, body = await api.call("GET", f"{LIST}?{query}")
        assert (status, body["error"]["code"]) == (400, "invalid_input"), query
        assert fragment in body["error"]["message"]
