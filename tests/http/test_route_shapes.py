"""Routes beyond method and path: HEAD answered from GET, catch-all paths,
and CORS answered by the front door, over a real server."""

from __future__ import annotations

import pytest

from tests.http.helpers import Api, make_app, make_route

pytestmark = [pytest.mark.ray, pytest.mark.server, pytest.mark.shared_server]


async def test_head_is_answered_from_get_without_a_body(api: Api) -> None:
    await make_app(api, "heads")
    source = (
        'return {status = 200, headers = {["X-Method"] = ctx.request.method},'
        ' body = "twelve bytes"}'
    )
    await make_route(api, "heads", source, path="/page")
    status, body = await api.call("HEAD", "/apps/heads/page")
    assert (status, body) == (200, "")
    assert api.last_headers["X-Method"] == "HEAD"  # the script knows
    assert api.last_headers["Content-Length"] == "12"  # the GET's, without it
    status, body = await api.call("POST", "/apps/heads/page")
    assert status == 405
    assert api.last_headers["Allow"] == "GET, HEAD"


async def test_an_explicit_head_route_wins(api: Api) -> None:
    await make_app(api, "ownhead")
    await make_route(api, "ownhead", 'return "get"', path="/p", name="g")
    await make_route(
        api,
        "ownhead",
        'return {status = 200, headers = {["X-Own"] = "yes"}}',
        method="HEAD",
        path="/p",
        name="h",
    )
    status, _ = await api.call("HEAD", "/apps/ownhead/p")
    assert (status, api.last_headers.get("X-Own")) == (200, "yes")


async def test_a_catch_all_takes_the_rest_of_the_path(api: Api) -> None:
    await make_app(api, "files")
    await make_route(
        api, "files", "return {path = ctx.request.params.path}", path="/files/{path*}"
    )
    await make_route(
        api, "files", "return {static = true}", path="/files/readme", name="readme"
    )
    await make_route(
        api,
        "files",
        "return {one = ctx.request.params.name}",
        path="/files/{name}",
        name="one",
    )
    assert await api.call("GET", "/apps/files/files/a/b/c.txt") == (
        200,
        {"path": "a/b/c.txt"},
    )
    assert await api.call("GET", "/apps/files/files/readme") == (200, {"static": True})
    assert await api.call("GET", "/apps/files/files/x") == (200, {"one": "x"})
    status, _ = await api.call("GET", "/apps/files/files")
    assert status == 404  # a catch-all takes one segment or more
    status, body = await api.call(
        "POST",
        "/api/v1/admin/scripts/"
        + (await api.call("GET", "/api/v1/admin/apps/files/scripts"))[1]["items"][0][
            "id"
        ]
        + "/routes",
        {"method": "GET", "path": "/files/{other*}"},
    )
    assert (status, body["error"]["code"]) == (409, "conflict")


async def test_cors_is_answered_by_the_front_door(api: Api) -> None:
    await make_app(api, "corsy")
    await make_route(api, "corsy", "return {ok = true}", method="POST", path="/x")
    origin = {"Origin": "https://site.example"}
    ask = {
        **origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Content-Type, X-Token",
    }
    # No policy: no preflight answer (no OPTIONS route either), no CORS header.
    status, _ = await api.call("OPTIONS", "/apps/corsy/x", headers=ask)
    assert status == 405
    await api.call("POST", "/apps/corsy/x", {}, headers=origin)
    assert "Access-Control-Allow-Origin" not in api.last_headers
    policy = {
        "origins": ["https://Site.example"],
        "methods": ["post"],
        "headers": ["X-Token"],
        "max_age_s": 60,
    }
    status, settings = await api.call(
        "PUT", "/api/v1/admin/apps/corsy/settings/cors", policy
    )
    assert status == 200, settings
    assert settings["cors"] == {
        "origins": ["https://site.example"],
        "methods": ["POST"],
        "headers": ["x-token"],
        "max_age_s": 60,
    }
    assert (await api.call("GET", "/api/v1/admin/apps/corsy/settings"))[1] == settings
    status, _ = await api.call("OPTIONS", "/apps/corsy/x", headers=ask)
    assert status == 204
    assert api.last_headers["Access-Control-Allow-Origin"] == "https://site.example"
    assert api.last_headers["Access-Control-Allow-Methods"] == "POST"
    assert api.last_headers["Access-Control-Max-Age"] == "60"
    assert await api.call("POST", "/apps/corsy/x", {}, headers=origin) == (
        200,
        {"ok": True},
    )
    assert api.last_headers["Access-Control-Allow-Origin"] == "https://site.example"
    assert "X-PiCloud-Execution-Id" in api.last_headers["Access-Control-Expose-Headers"]
    evil = {**ask, "Origin": "https://evil.example"}
    status, body = await api.call("OPTIONS", "/apps/corsy/x", headers=evil)
    assert (status, body["error"]["code"]) == (403, "cors_refused")
    await api.call(
        "POST", "/apps/corsy/x", {}, headers={"Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in api.last_headers
    status, body = await api.call(
        "OPTIONS",
        "/apps/corsy/x",
        headers={**ask, "Access-Control-Request-Method": "DELETE"},
    )
    assert status == 403
    assert "DELETE" in body["error"]["message"]
    assert (await api.call("DELETE", "/api/v1/admin/apps/corsy/settings/cors"))[
        0
    ] == 204
    status, _ = await api.call("OPTIONS", "/apps/corsy/x", headers=ask)
    assert status == 405


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"origins": ["site.example"]}, "scheme://host"),
        ({"origins": ["https://a.example/path"]}, "scheme://host"),
        ({"origins": []}, "origins"),
        ({"origins": ["*"], "methods": ["FETCH"]}, "FETCH"),
        ({"origins": ["*"], "headers": ["bad header"]}, "header"),
        ({"origins": ["*"], "max_age_s": -1}, "max_age_s"),
        ({"origins": ["*"], "credentials": True}, "credentials"),
    ],
)
async def test_a_bad_cors_policy_is_refused(
    api: Api, body: dict[str, object], fragment: str
) -> None:
    await api.call("POST", "/api/v1/admin/apps", {"slug": "badcors", "name": "b"})
    status, answer = await api.call(
        "PUT", "/api/v1/admin/apps/badcors/settings/cors", body
    )
    assert (status, answer["error"]["code"]) == (400, "invalid_input"), answer
    assert fragment in answer["error"]["message"]
