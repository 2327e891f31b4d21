"""Modules end to end (SPEC.md §5): real server, Ray, Postgres and Lua."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.helpers import Api, make_app, make_route, make_script

pytestmark = [pytest.mark.ray, pytest.mark.server]

B = 'local B = {}\nfunction B.word() return "{word}" end\nreturn B'
A = (
    'local b = require("b")\nlocal A = {}\n'
    'function A.say() return "a:" .. b.word() end\nreturn A'
)


async def module(api: Api, slug: str, name: str, source: str) -> dict[str, Any]:
    return await make_script(api, slug, source, name, kind="module")


async def test_a_chain_of_modules_and_the_import_graph(api: Api) -> None:
    await make_app(api, "mods")
    b = await module(api, "mods", "b", B.replace("{word}", "one"))
    assert (b["kind"], b["imports"], b["used_by"]) == ("module", [], [])
    a = await module(api, "mods", "a", A)
    assert a["imports"] == ["b"]
    main, _ = await make_route(api, "mods", 'return require("a").say()', path="/say")
    assert (main["kind"], main["imports"]) == ("endpoint", ["a"])
    assert await api.call("GET", "/apps/mods/say") == (200, "a:one")

    status, changed = await api.call(
        "PUT",
        f"/api/v1/admin/scripts/{b['id']}",
        {"source": B.replace("{word}", "two")},
    )
    assert (status, changed["version"]) == (200, 2)
    assert await api.call("GET", "/apps/mods/say") == (200, "a:two")

    _, shown_a = await api.call("GET", f"/api/v1/admin/scripts/{a['id']}")
    assert (shown_a["imports"], shown_a["used_by"]) == (["b"], ["main"])
    _, shown_b = await api.call("GET", f"/api/v1/admin/scripts/{b['id']}")
    assert (shown_b["imports"], shown_b["used_by"]) == ([], ["a"])
    _, listed = await api.call("GET", "/api/v1/admin/apps/mods/scripts")
    assert {s["name"]: (s["kind"], s["used_by"]) for s in listed["items"]} == {
        "a": ("module", ["main"]),
        "b": ("module", ["a"]),
        "main": ("endpoint", []),
    }


async def test_save_time_refusals(api: Api) -> None:
    await make_app(api, "refuse")
    url = "/api/v1/admin/apps/refuse/scripts"
    status, body = await api.call(
        "POST", url, {"name": "json", "kind": "module", "source": "return {}"}
    )
    assert (status, body["error"]["code"]) == (400, "module_error")
    assert "reserved" in body["error"]["message"]
    status, body = await api.call(
        "POST",
        url,
        {
            "name": "util",
            "kind": "module",
            "source": "local M = {}\nprint(1)\nreturn M",
        },
    )
    assert (status, body["error"]["code"]) == (400, "module_shape_error")
    assert body["error"]["message"].startswith("util:2: a function call at top level")

    util = await module(api, "refuse", "util", "return {}")
    status, body = await api.call(
        "POST",
        f"/api/v1/admin/scripts/{util['id']}/routes",
        {"method": "GET", "path": "/util"},
    )
    assert (status, body["error"]["code"]) == (400, "invalid_input")
    status, body = await api.call(
        "POST",
        "/api/v1/admin/apps/refuse/triggers/kv",
        {"script_id": util["id"], "collection": "c"},
    )
    assert (status, body["error"]["code"]) == (400, "invalid_input")
    assert "module" in body["error"]["message"]


async def test_a_missing_module_fails_the_request_with_a_clear_log(api: Api) -> None:
    await make_app(api, "missing")
    await make_route(api, "missing", 'return require("nope")', path="/x")
    status, body = await api.call("GET", "/apps/missing/x")
    assert (status, body["error"]["code"]) == (500, "script_error")
    _, log = await api.call("GET", "/api/v1/admin/apps/missing/executions?status=error")
    assert "require: module 'nope' not found" in log["items"][0]["error"]


async def test_deleting_an_imported_module_is_refused_unless_forced(
    api: Api,
) -> None:
    await make_app(api, "del")
    b = await module(api, "del", "b", B.replace("{word}", "x"))
    await module(api, "del", "a", A)
    await make_route(api, "del", 'return require("b").word()', path="/b")
    url = f"/api/v1/admin/scripts/{b['id']}"
    status, body = await api.call("DELETE", url)
    assert (status, body["error"]["code"]) == (409, "conflict")
    assert "imported by a, main" in body["error"]["message"]
    status, body = await api.call("DELETE", url + "?force=maybe")
    assert status == 400
    status, _ = await api.call("DELETE", url + "?force=true")
    assert status == 204
    assert (await api.call("GET", url))[0] == 404
    assert (await api.call("GET", "/apps/del/b"))[0] == 500
