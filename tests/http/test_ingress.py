"""Scripts, routes and requests end to end: real server, Ray, Postgres, Lua."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from picloud.http.ingress import EXECUTION_HEADER
from tests.http.helpers import Api, make_app, make_route, make_script

pytestmark = [pytest.mark.ray, pytest.mark.server, pytest.mark.shared_server]


async def test_request_parts_reach_the_script(api: Api) -> None:
    await make_app(api, "echo")
    source = """
    return {
      method = ctx.request.method, path = ctx.request.path,
      id = ctx.request.params.id, q = ctx.request.query.q,
      agent = ctx.request.headers["x-agent"], body = ctx.request:json(),
      app = ctx.app.slug,
    }
    """
    await make_route(api, "echo", source, "POST", "/things/{id}")
    status, body = await api.call(
        "POST",
        "/apps/echo/things/42?q=hi&q=ignored",
        {"a": [1, 2]},
        headers={"X-Agent": "t"},
    )
    assert status == 200, body
    assert body == {
        "method": "POST",
        "path": "/things/42",
        "id": "42",
        "q": "hi",
        "agent": "t",
        "body": {"a": [1, 2]},
        "app": "echo",
    }
    assert api.last_headers[EXECUTION_HEADER]


async def test_each_response_form(api: Api) -> None:
    await make_app(api, "forms")
    await make_route(api, "forms", "return {ok = true, n = 3}", path="/table", name="t")
    await make_route(api, "forms", 'return "plain words"', path="/string", name="s")
    await make_route(
        api,
        "forms",
        'return {status = 201, body = "a,b",'
        ' headers = {["X-Made"] = "yes", ["Content-Type"] = "text/csv"}}',
        path="/full",
        name="f",
    )
    await make_route(api, "forms", "return nil", path="/nothing", name="n")
    await make_route(
        api,
        "forms",
        'return {body = "x", headers = {["x-picloud-execution-id"] = "forged",'
        ' ["Connection"] = "close", ["X-Kept"] = "yes"}}',
        path="/forged",
        name="forged",
    )
    assert await api.call("GET", "/apps/forms/table") == (200, {"ok": True, "n": 3})
    assert api.last_headers["Content-Type"].startswith("application/json")
    assert await api.call("GET", "/apps/forms/string") == (200, "plain words")
    assert api.last_headers["Content-Type"].startswith("text/plain")
    assert await api.call("GET", "/apps/forms/full") == (201, "a,b")
    assert api.last_headers["X-Made"] == "yes"
    assert api.last_headers["Content-Type"].startswith("text/csv")
    status, _ = await api.call("GET", "/apps/forms/nothing")
    assert status == 204
    # The execution id and hop-by-hop headers are the front door's, not the script's.
    assert await api.call("GET", "/apps/forms/forged") == (200, "x")
    [execution_id] = api.last_headers.getall(EXECUTION_HEADER)
    assert len(execution_id) == 32  # ours (secrets.token_hex(16)), not "forged"
    assert api.last_headers.get("Connection") != "close"
    assert api.last_headers["X-Kept"] == "yes"


async def test_unknown_app_route_and_method_are_json_errors(api: Api) -> None:
    await make_app(api, "errs")
    await make_route(api, "errs", 'return "x"', "GET", "/only-get")
    status, body = await api.call("GET", "/apps/nobody/here")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await api.call("GET", "/apps/errs/elsewhere")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await api.call("DELETE", "/apps/errs/only-get")
    assert (status, body["error"]["code"]) == (405, "method_not_allowed")
    assert api.last_headers["Allow"] == "GET, HEAD"  # HEAD is answered from GET


async def test_body_over_the_limit_is_413(api: Api) -> None:
    await make_app(api, "big")
    await make_route(api, "big", "return #ctx.request.body", "POST", "/")
    status, body = await api.call("POST", "/apps/big/", raw=b"x" * (1024 * 1024 + 1))
    assert (status, body["error"]["code"]) == (413, "payload_too_large")
    assert await api.call("POST", "/apps/big/", raw=b"12345") == (200, 5)


async def test_script_error_is_500_with_execution_id_and_the_detail_in_the_log(
    api: Api,
) -> None:
    await make_app(api, "oops")
    await make_route(
        api, "oops", 'log.warn("about to fail")\nerror("secret detail")', path="/"
    )
    status, body = await api.call("GET", "/apps/oops/")
    assert status == 500
    execution_id = body["error"]["execution_id"]
    assert execution_id == api.last_headers[EXECUTION_HEADER]
    assert "secret detail" not in str(body)
    assert "Traceback" not in str(body)
    status, log = await api.call(
        "GET", "/api/v1/admin/apps/oops/executions?status=error"
    )
    assert status == 200
    [entry] = log["items"]
    assert entry["id"] == execution_id
    assert entry["status"] == "error"
    assert "secret detail" in entry["error"]
    assert "main:2" in entry["error"]  # the script's name and line
    assert [line["message"] for line in entry["logs"]] == ["about to fail"]
    assert entry["logs"][0]["level"] == "warn"


async def test_a_script_update_takes_effect_on_the_next_request(api: Api) -> None:
    await make_app(api, "live")
    script, _ = await make_route(api, "live", 'return "v1"', path="/")
    assert await api.call("GET", "/apps/live/") == (200, "v1")
    status, updated = await api.call(
        "PUT", f"/api/v1/admin/scripts/{script['id']}", {"source": 'return "v2"'}
    )
    assert (status, updated["version"]) == (200, 2)
    assert await api.call("GET", "/apps/live/") == (200, "v2")


async def test_route_changes_take_effect_on_the_next_request(api: Api) -> None:
    await make_app(api, "routes")
    _, route = await make_route(api, "routes", 'return "here"', path="/a")
    assert await api.call("GET", "/apps/routes/a") == (200, "here")
    status, _ = await api.call("DELETE", f"/api/v1/admin/routes/{route['id']}")
    assert status == 204
    status, _ = await api.call("GET", "/apps/routes/a")
    assert status == 404


async def test_a_deleted_app_stops_answering(api: Api) -> None:
    await make_app(api, "gone")
    await make_route(api, "gone", 'return "alive"', path="/")
    assert await api.call("GET", "/apps/gone/") == (200, "alive")
    status, _ = await api.call("DELETE", "/api/v1/admin/apps/gone")
    assert status == 204
    status, body = await api.call("GET", "/apps/gone/")
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_two_apps_with_the_same_route_are_independent(api: Api) -> None:
    for slug in ("left", "right"):
        await make_app(api, slug)
        await make_route(api, slug, f'return "{slug} " .. ctx.app.slug', path="/same")
    assert await api.call("GET", "/apps/left/same") == (200, "left left")
    assert await api.call("GET", "/apps/right/same") == (200, "right right")


async def test_script_and_route_admin_errors(api: Api) -> None:
    await make_app(api, "adm")
    module = await make_script(
        api, "adm", "local M = {}\nreturn M", name="util", kind="module"
    )
    endpoint = await make_script(api, "adm", 'return "x"', name="ep")
    cases: list[tuple[str, str, Any, int, str]] = [
        (
            "POST",
            "/api/v1/admin/apps/adm/scripts",
            {"name": "bad", "source": "return {"},
            400,
            "script_syntax_error",
        ),
        (
            "POST",
            "/api/v1/admin/apps/adm/scripts",
            {"name": "1x", "source": "return 1"},
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/api/v1/admin/apps/adm/scripts",
            {"name": "ep", "source": "return 1"},
            409,
            "conflict",
        ),
        (
            "POST",
            "/api/v1/admin/apps/adm/scripts",
            {"name": "k", "source": "return 1", "kind": "lib"},
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/api/v1/admin/apps/nope/scripts",
            {"name": "k", "source": "return 1"},
            404,
            "not_found",
        ),
        (
            "PUT",
            f"/api/v1/admin/scripts/{endpoint['id']}",
            {"source": "if then"},
            400,
            "script_syntax_error",
        ),
        ("GET", "/api/v1/admin/scripts/nope", None, 404, "not_found"),
        (
            "POST",
            f"/api/v1/admin/scripts/{module['id']}/routes",
            {"method": "GET", "path": "/m"},
            400,
            "invalid_input",
        ),
        (
            "POST",
            f"/api/v1/admin/scripts/{endpoint['id']}/routes",
            {"method": "GET", "path": "x"},
            400,
            "invalid_input",
        ),
        (
            "POST",
            f"/api/v1/admin/scripts/{endpoint['id']}/routes",
            {"method": "GET", "path": "/e", "dispatch_mode": "later"},
            400,
            "invalid_input",
        ),
        ("DELETE", "/api/v1/admin/routes/nope", None, 404, "not_found"),
    ]
    for method, path, body, expected, code in cases:
        status, answer = await api.call(method, path, body)
        assert (status, answer["error"]["code"]) == (expected, code), (
            method,
            path,
            answer,
        )
    status, answer = await api.call(
        "POST",
        "/api/v1/admin/apps/adm/scripts",
        {"name": "bad", "source": "local x = 1\nreturn {"},
    )
    assert "line 2" in answer["error"]["message"] or ":2:" in answer["error"]["message"]
    first = {"method": "GET", "path": "/users/{id}"}
    status, _ = await api.call(
        "POST", f"/api/v1/admin/scripts/{endpoint['id']}/routes", first
    )
    assert status == 201
    clash = {"method": "GET", "path": "/users/{name}"}
    status, answer = await api.call(
        "POST", f"/api/v1/admin/scripts/{endpoint['id']}/routes", clash
    )
    assert (status, answer["error"]["code"]) == (409, "conflict")
    status, listed = await api.call("GET", "/api/v1/admin/apps/adm/scripts")
    assert sorted(s["name"] for s in listed["items"]) == ["ep", "util"]
    assert {s["name"]: s["kind"] for s in listed["items"]} == {
        "ep": "endpoint",
        "util": "module",
    }


async def test_async_route_answers_202_then_runs(api: Api) -> None:
    await make_app(api, "later")
    await make_route(
        api,
        "later",
        'log.info("ran with " .. ctx.request.body)\nreturn 1',
        "POST",
        "/job",
        dispatch_mode="async",
    )
    status, body = await api.call("POST", "/apps/later/job", raw=b"payload")
    assert status == 202
    execution_id = body["execution_id"]
    for _ in range(100):
        _, log = await api.call("GET", "/api/v1/admin/apps/later/executions")
        if any(item["id"] == execution_id for item in log["items"]):
            break
        await asyncio.sleep(0.05)
    [entry] = [item for item in log["items"] if item["id"] == execution_id]
    assert entry["status"] == "ok"
    assert entry["trigger"] == "async:POST /job"
    assert entry["logs"][0]["message"] == "ran with payload"


async def test_executions_are_paginated_and_filtered(api: Api) -> None:
    await make_app(api, "pages")
    await make_route(
        api,
        "pages",
        'if ctx.request.query.fail then error("no") end return 1',
        path="/",
    )
    for n in range(7):
        await api.call("GET", "/apps/pages/" + ("?fail=1" if n % 3 == 0 else ""))
    seen: list[str] = []
    cursor = ""
    while True:
        status, page = await api.call(
            "GET", f"/api/v1/admin/apps/pages/executions?limit=3&cursor={cursor}"
        )
        assert status == 200
        seen += [item["id"] for item in page["items"]]
        if page["cursor"] is None:
            break
        cursor = page["cursor"]
    assert len(seen) == len(set(seen)) == 7
    _, errors = await api.call(
        "GET", "/api/v1/admin/apps/pages/executions?status=error"
    )
    assert len(errors["items"]) == 3
    status, body = await api.call(
        "GET", "/api/v1/admin/apps/pages/executions?status=weird"
    )
    assert (status, body["error"]["code"]) == (400, "invalid_input")
