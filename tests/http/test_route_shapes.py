"""Routes beyond method and path: HEAD answered from GET, catch-all paths,
and CORS answered by the front door, over a real server."""

from __future__ import annotations

import pytest

from picloud.server import Server
from tests.http.helpers import Api, Identity, make_app, make_route

pytestmark = [pytest.mark.ray, pytest.mark.server]


@pytest.fixture
def server(shared_server: Server) -> Server:
    return shared_server


@pytest.fixture
def admin(shared_admin: Identity) -> Identity:
    return shared_admin


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
