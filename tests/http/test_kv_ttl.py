"""KV entries with a TTL over a real server: never read once expired (even
before the sweep), expiry recorded as an event a KV trigger on op expire
sees, the admin API showing the expiry."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from tests.http.helpers import (
    Api,
    eventually,
    make_app,
    make_route,
    make_script,
)

pytestmark = [pytest.mark.ray, pytest.mark.server, pytest.mark.shared_server]


async def test_an_expired_key_is_never_read(api: Api) -> None:
    await make_app(api, "ttl")
    source = """
    local c = kv.collection("s")
    local op = ctx.request.query.op
    if op == "set" then
      c:set("k", {v = 1}, {ttl_ms = tonumber(ctx.request.query.ttl)})
      c:set("forever", 1)
      return {inside = c:get("k")}
    end
    local page = c:list{}
    local keys = {}
    for _, item in ipairs(page.items) do keys[#keys + 1] = item.key end
    return {k = c:get("k"), has = c:has("k"), keys = keys}
    """
    await make_route(api, "ttl", source, path="/k")
    assert await api.call("GET", "/apps/ttl/k?op=set&ttl=300") == (
        200,
        {"inside": {"v": 1}},
    )
    assert await api.call("GET", "/apps/ttl/k") == (
        200,
        {"k": {"v": 1}, "has": True, "keys": ["forever", "k"]},
    )
    _, page = await api.call("GET", "/api/v1/admin/apps/ttl/kv/s")
    expiry = {i["key"]: i["expires_at"] for i in page["items"]}
    assert expiry["forever"] is None
    assert datetime.fromisoformat(expiry["k"]) > datetime.fromisoformat(
        "2000-01-01T00:00:00+00:00"
    )
    status, _ = await api.call("GET", "/api/v1/admin/apps/ttl/kv/s/k")
    assert status == 200
    assert api.last_headers["X-PiCloud-Expires-At"] == expiry["k"]
    await asyncio.sleep(0.4)  # sub-second: gone right after, sweep or not
    assert await api.call("GET", "/apps/ttl/k") == (
        200,
        {"has": False, "keys": ["forever"]},
    )
    status, _ = await api.call("GET", "/api/v1/admin/apps/ttl/kv/s/k")
    assert status == 404


async def test_expiry_is_an_event_a_kv_trigger_sees(api: Api) -> None:
    await make_app(api, "expiring")
    handler = await make_script(
        api,
        "expiring",
        'kv.collection("seen"):set(ctx.event.key, {op = ctx.event.op,'
        " prev = ctx.event.prev_value, at = ctx.event.expired_at})",
        name="h",
    )
    status, _ = await api.call(
        "POST",
        "/api/v1/admin/apps/expiring/triggers/kv",
        {"script_id": handler["id"], "ops": ["expire"], "collection": "s"},
    )
    assert status == 201
    status, _ = await api.call(
        "PUT", "/api/v1/admin/apps/expiring/kv/s/session?ttl_ms=200", {"user": 7}
    )
    assert status == 200

    async def seen() -> bool:
        status, _ = await api.call("GET", "/api/v1/admin/apps/expiring/kv/seen/session")
        return status == 200

    await eventually(seen, within=10)
    _, value = await api.call("GET", "/api/v1/admin/apps/expiring/kv/seen/session")
    assert value["op"] == "expire"
    assert value["prev"] == {"user": 7}
    assert value["at"].endswith("Z")
    # A set without a TTL keeps a key forever, even one that had a TTL.
    await api.call("PUT", "/api/v1/admin/apps/expiring/kv/s/kept?ttl_ms=300", 1)
    await api.call("PUT", "/api/v1/admin/apps/expiring/kv/s/kept", 2)
    await asyncio.sleep(0.6)
    assert await api.call("GET", "/api/v1/admin/apps/expiring/kv/s/kept") == (200, 2)
    status, body = await api.call(
        "PUT", "/api/v1/admin/apps/expiring/kv/s/bad?ttl_ms=0", 1
    )
    assert (status, body["error"]["code"]) == (400, "invalid_input")


async def test_a_bad_ttl_is_a_script_error(api: Api) -> None:
    await make_app(api, "badttl")
    source = """
    local ok, e = pcall(function() kv.collection("s"):set("k", 1, {ttl_ms = -5}) end)
    local ok2, e2 = pcall(function() kv.collection("s"):set("k", 1, {ttl_ms = 1.5}) end)
    return {e = e, e2 = e2}
    """
    await make_route(api, "badttl", source, path="/x")
    status, body = await api.call("GET", "/apps/badttl/x")
    assert status == 200, body
    assert "ttl_ms must be a positive integer" in body["e"]
    assert "ttl_ms must be a positive integer" in body["e2"]
