"""What-if over a real server: a script's recorded invocations run again with
another source, as of their original runs, and nothing is committed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from picloud.server import Server
from picloud.store.replay import PROJECTIONS
from tests.http.helpers import Api, make_app, make_route, make_script

pytestmark = [pytest.mark.ray, pytest.mark.server, pytest.mark.shared_server]

APPS = "/api/v1/admin/apps"
MAX_RUNS = 5

COUNTER = """
local hits = kv.collection("hits")
local n = (hits:get("n") or 0) + 1
hits:set("n", n)
return {n = n, name = ctx.request.params.name}
"""
# The same reads, other writes and another answer: the new run's answer
# shows what it read, which must be the data as of the original run.
TIMES_TEN = """
local hits = kv.collection("hits")
local seen = hits:get("n") or 0
hits:set("n", seen * 10)
kv.collection("audit"):set(ctx.request.params.name, seen)
return {seen = seen, name = ctx.request.params.name}
"""


@pytest.fixture(scope="module")
def module_overrides() -> dict[str, Any]:
    return {
        "what_if_max_invocations": MAX_RUNS,
        "delivery_wake_interval_ms": 200,
    }


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def what_if(api: Api, slug: str, body: dict[str, Any]) -> tuple[int, Any]:
    return await api.call("POST", f"{APPS}/{slug}/what-if", {"from": 0, **body})


async def ok_what_if(api: Api, slug: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = await what_if(api, slug, body)
    assert status == 200, answer
    result: dict[str, Any] = answer
    return result


async def committed(dsn: str, app_id: str) -> dict[str, Any]:
    """Everything the app has committed: its stream's version and every
    projection's rows (md5s in order), read straight from Postgres."""
    conn = await asyncpg.connect(dsn)
    try:
        seen: dict[str, Any] = {
            "version": await conn.fetchval(
                "SELECT max(stream_version) FROM events WHERE stream = $1",
                f"app-{app_id}",
            ),
            "events": await conn.fetchval("SELECT count(*) FROM events"),
        }
        for table in PROJECTIONS:
            rows = await conn.fetch(f"SELECT md5(t::text) FROM {table} t ORDER BY 1")  # noqa: S608  # fixed names
            seen[table] = [r[0] for r in rows]
        return seen
    finally:
        await conn.close()


async def counter_app(api: Api, slug: str, names: list[str]) -> dict[str, Any]:
    await make_app(api, slug)
    script, _ = await make_route(api, slug, COUNTER, "POST", "/count/{name}")
    for name in names:
        status, body = await api.call("POST", f"/apps/{slug}/count/{name}")
        assert status == 200, body
    return script


async def test_the_runs_again_answer_then_and_now_and_read_the_data_as_of_then(
    api: Api, server: Server
) -> None:
    script = await counter_app(api, "wi-counter", ["ann", "bob", "cy"])
    app_id = (await api.call("GET", f"{APPS}/wi-counter"))[1]["id"]
    before = await committed(server.dsn, app_id)
    answer = await ok_what_if(
        api, "wi-counter", {"script_id": script["id"], "source": TIMES_TEN}
    )
    assert (answer["runs"], answer["changed"], answer["not_run"]) == (3, 3, 0)
    items = answer["items"]
    assert [i["trigger"] for i in items] == ["route:POST /count/{name}"] * 3
    for n, (item, name) in enumerate(zip(items, ["ann", "bob", "cy"], strict=True)):
        original, new = item["original"], item["new"]
        assert original["status"] == new["status"] == "ok"
        assert original["response"]["status"] == 200
        assert original["response"]["body"].replace(" ", "") in (
            f'{{"n":{n + 1},"name":"{name}"}}',
            f'{{"name":"{name}","n":{n + 1}}}',
        )
        assert original["writes"] == [
            {"op": "kv.set", "collection": "hits", "key": "n", "value": n + 1}
        ]
        # each run read what the original read then (n), not its own dry writes
        assert new["response"]["status"] == 200
        assert f'"seen":{n}' in new["response"]["body"].replace(" ", "")
        assert new["writes"] == [
            {"op": "kv.set", "collection": "hits", "key": "n", "value": n * 10},
            {"op": "kv.set", "collection": "audit", "key": name, "value": n},
        ]
        assert item["changed"] is True
        assert item["note"] is None
    assert await committed(server.dsn, app_id) == before
    status, entry = await api.call("GET", f"{APPS}/wi-counter/kv/hits/n")
    assert (status, entry) == (200, 3)
    status, audit = await api.call("GET", f"{APPS}/wi-counter/kv/audit")
    assert audit["items"] == []


async def test_the_same_source_again_changes_nothing_and_a_range_picks_runs(
    api: Api, server: Server
) -> None:
    script = await counter_app(api, "wi-same", ["a", "b", "c", "d"])
    answer = await ok_what_if(
        api, "wi-same", {"script_id": script["id"], "source": COUNTER}
    )
    assert (answer["runs"], answer["changed"]) == (4, 0)
    for item in answer["items"]:
        assert item["new"]["writes"] == item["original"]["writes"]
        assert item["new"]["response"]["sha256"] or item["new"]["response"]["body"]
    positions = [item["position"] for item in answer["items"]]
    assert positions == sorted(positions)
    ranged = await ok_what_if(
        api,
        "wi-same",
        {
            "script_id": script["id"],
            "source": COUNTER,
            "from": positions[1],
            "to": positions[2],
        },
    )
    assert [i["position"] for i in ranged["items"]] == positions[1:3]
    assert (ranged["from"], ranged["to"]) == (positions[1], positions[2])


async def test_a_failing_new_version_reports_its_error_and_logs_and_writes_nothing(
    api: Api,
) -> None:
    script = await counter_app(api, "wi-fails", ["x"])
    source = 'log.info("about to fail")\nkv.collection("hits"):set("n", 0)\nerror("no")'
    answer = await ok_what_if(
        api, "wi-fails", {"script_id": script["id"], "source": source}
    )
    [item] = answer["items"]
    assert item["original"]["status"] == "ok"
    new = item["new"]
    assert new["status"] == "error"
    assert "no" in new["error"]
    assert new["response"] is None
    assert new["writes"] == []
    assert [line["message"] for line in new["logs"]] == ["about to fail"]
    assert item["changed"] is True


async def test_a_trigger_run_gets_its_event_from_the_delivery(api: Api) -> None:
    await make_app(api, "wi-trigger")
    handler = await make_script(
        api,
        "wi-trigger",
        'kv.collection("seen"):set(ctx.event.key, "first") return {}',
        "handler",
    )
    status, _ = await api.call(
        "POST",
        f"{APPS}/wi-trigger/triggers/kv",
        {"script_id": handler["id"], "collection": "watched"},
    )
    assert status == 201
    for key in ("k1", "k2"):
        status, _ = await api.call("PUT", f"{APPS}/wi-trigger/kv/watched/{key}", 7)
        assert status == 200

    async def handled() -> bool:
        _, page = await api.call("GET", f"{APPS}/wi-trigger/kv/seen")
        return len(page["items"]) == 2

    await eventually(handled)
    source = (
        'local e = ctx.event kv.collection("seen"):set(e.key, e.op .. ":"'
        " .. tostring(e.value)) return {}"
    )
    answer = await ok_what_if(
        api, "wi-trigger", {"script_id": handler["id"], "source": source}
    )
    assert answer["runs"] == 2
    for item, key in zip(answer["items"], ("k1", "k2"), strict=True):
        assert item["trigger"].startswith("trigger:")
        assert item["original"]["writes"] == [
            {"op": "kv.set", "collection": "seen", "key": key, "value": "first"}
        ]
        assert item["new"]["writes"] == [
            {"op": "kv.set", "collection": "seen", "key": key, "value": "set:7"}
        ]


async def test_an_async_route_run_gets_its_request_from_the_accepted_event(
    api: Api,
) -> None:
    await make_app(api, "wi-async")
    source = 'kv.collection("got"):set("body", ctx.request.body) return {}'
    script, _ = await make_route(
        api, "wi-async", source, "POST", "/in", dispatch_mode="async"
    )
    status, accepted = await api.call("POST", "/apps/wi-async/in", raw=b"hello")
    assert status == 202, accepted

    async def ran() -> bool:
        status, _ = await api.call("GET", f"{APPS}/wi-async/kv/got/body")
        return status == 200

    await eventually(ran)
    answer = await ok_what_if(
        api,
        "wi-async",
        {
            "script_id": script["id"],
            "source": 'kv.collection("got"):set("upper", ctx.request.body:upper())'
            " return {}",
        },
    )
    [item] = answer["items"]
    assert item["execution_id"] == accepted["execution_id"]
    assert item["new"]["writes"] == [
        {"op": "kv.set", "collection": "got", "key": "upper", "value": "HELLO"}
    ]


async def test_documents_are_read_as_of_each_run(api: Api, server: Server) -> None:
    await make_app(api, "wi-docs")
    source = (
        'local found = docs.collection("notes"):find({kind = "todo"})'
        ' docs.collection("notes"):create({kind = "todo", n = #found})'
        " return {count = #found}"
    )
    script, _ = await make_route(api, "wi-docs", source, "POST", "/note")
    for _ in range(3):
        status, body = await api.call("POST", "/apps/wi-docs/note")
        assert status == 200, body
    app_id = (await api.call("GET", f"{APPS}/wi-docs"))[1]["id"]
    before = await committed(server.dsn, app_id)
    listing = (
        'local notes = docs.collection("notes")'
        " local ns = {} for _, d in ipairs(notes:list().items) do"
        " ns[#ns + 1] = d.data.n end"
        " return {ns = ns, zeros = #notes:find({n = 0})}"
    )
    answer = await ok_what_if(
        api, "wi-docs", {"script_id": script["id"], "source": listing}
    )
    then = [json.loads(i["original"]["response"]["body"]) for i in answer["items"]]
    assert then == [{"count": 0}, {"count": 1}, {"count": 2}]
    now = [json.loads(i["new"]["response"]["body"]) for i in answer["items"]]
    # an empty Lua table encodes as an object
    assert now == [
        {"ns": {}, "zeros": 0},
        {"ns": [0], "zeros": 1},
        {"ns": [0, 1], "zeros": 1},
    ]
    assert await committed(server.dsn, app_id) == before


async def test_a_recorded_request_and_response_leave_without_secrets(
    api: Api,
) -> None:
    await make_app(api, "wi-redact")
    source = 'return {headers = {["Set-Cookie"] = "sid=app-secret"}, body = "ok"}'
    await make_route(api, "wi-redact", source, "GET", "/r")
    basic = "Basic Y2FsbGVyOmNhbGxlci1zZWNyZXQ="  # caller:caller-secret
    status, _ = await api.call(
        "GET", "/apps/wi-redact/r", headers={"Authorization": basic, "X-Trace": "t1"}
    )
    assert status == 200
    status, page = await api.call(
        "GET", "/api/v1/admin/events?app=wi-redact&type=invocation.recorded.v1"
    )
    assert status == 200, page
    [event] = page["items"]
    request, response = event["data"]["request"], event["data"]["response"]
    assert request["headers"]["x-trace"] == "t1"
    assert "authorization" not in request["headers"]
    assert response["status"] == 200
    assert "Set-Cookie" not in response["headers"]
    assert basic not in json.dumps(page)
    assert "app-secret" not in json.dumps(page)


async def test_bad_input_is_refused(api: Api) -> None:
    script = await counter_app(api, "wi-bad", ["a"] * (MAX_RUNS + 1))
    module = await make_script(
        api, "wi-bad", "local M = {}\nreturn M", "lib", kind="module"
    )
    await make_app(api, "wi-other")
    theirs = await make_script(api, "wi-other", "return {}", "theirs")
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"script_id": module["id"], "source": "return {}"}, 400, "is a module"),
        ({"script_id": "nope", "source": "return {}"}, 404, "no script"),
        ({"script_id": theirs["id"], "source": "return {}"}, 404, "no script"),
        (
            {"script_id": script["id"], "source": COUNTER},
            400,
            f"more than {MAX_RUNS} invocations",
        ),
        ({"script_id": script["id"], "source": "return {", "to": 1}, 400, "main:1:"),
        (
            {"script_id": script["id"], "source": COUNTER, "from": 9, "to": 3},
            400,
            "after",
        ),
        ({"script_id": script["id"], "source": COUNTER, "from": -1}, 400, "from"),
        ({"script_id": script["id"], "source": COUNTER, "upto": 3}, 400, "upto"),
    ]
    for body, status, words in cases:
        got, answer = await api.call("POST", f"{APPS}/wi-bad/what-if", body)
        assert got == status, (body, answer)
        assert words in answer["error"]["message"], (body, answer)
    assert (
        "PICLOUD_WHAT_IF_MAX_INVOCATIONS"
        in (
            await what_if(api, "wi-bad", {"script_id": script["id"], "source": COUNTER})
        )[1]["error"]["message"]
    )
