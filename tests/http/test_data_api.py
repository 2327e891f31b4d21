"""The KV and docs stores over HTTP: scripts, the admin/data API, isolation."""

from __future__ import annotations

import asyncio

import pytest

from tests.http.helpers import Api, make_app, make_route

pytestmark = [pytest.mark.ray, pytest.mark.server, pytest.mark.shared_server]


async def test_a_thousand_concurrent_increments_over_http_count_exactly(
    api: Api,
) -> None:
    await make_app(api, "counter")
    await make_route(
        api,
        "counter",
        'local c = kv.collection("n") local v = (c:get("hits") or 0) + 1 '
        'c:set("hits", v) return {v = v}',
        "POST",
        "/hit",
    )
    semaphore = asyncio.Semaphore(50)

    async def hit() -> int:
        async with semaphore:
            status, body = await api.call("POST", "/apps/counter/hit")
            assert status == 200, body
            return int(body["v"])

    seen = await asyncio.gather(*(hit() for _ in range(1000)))
    assert sorted(seen) == list(range(1, 1001))  # every increment saw its predecessor
    assert await api.call("GET", "/api/v1/admin/apps/counter/kv/n/hits") == (200, 1000)


async def test_kv_admin_api_reads_and_writes_through_the_app(api: Api) -> None:
    await make_app(api, "kvadmin")
    await make_route(
        api, "kvadmin", 'return {v = kv.collection("cfg"):get("mode")}', path="/mode"
    )
    status, body = await api.call(
        "PUT", "/api/v1/admin/apps/kvadmin/kv/cfg/mode", {"fast": True}
    )
    assert (status, body) == (200, {"fast": True})
    assert await api.call("GET", "/apps/kvadmin/mode") == (200, {"v": {"fast": True}})
    await api.call("PUT", "/api/v1/admin/apps/kvadmin/kv/cfg/a%2Fb", "slash")
    assert await api.call("GET", "/api/v1/admin/apps/kvadmin/kv/cfg/a%2Fb") == (
        200,
        "slash",
    )
    status, listed = await api.call("GET", "/api/v1/admin/apps/kvadmin/kv/cfg?limit=1")
    assert status == 200
    assert [i["key"] for i in listed["items"]] == ["a/b"]
    status, rest = await api.call(
        "GET", f"/api/v1/admin/apps/kvadmin/kv/cfg?cursor={listed['cursor']}"
    )
    assert [i["key"] for i in rest["items"]] == ["mode"]
    assert rest["cursor"] is None
    assert await api.call("GET", "/api/v1/admin/apps/kvadmin/kv") == (
        200,
        {"items": [{"name": "cfg", "count": 2}]},
    )
    status, _ = await api.call("DELETE", "/api/v1/admin/apps/kvadmin/kv/cfg/mode")
    assert status == 204
    assert await api.call("GET", "/apps/kvadmin/mode") == (200, {})
    for method, path, raw, expected, code in [
        ("GET", "/api/v1/admin/apps/kvadmin/kv/cfg/mode", None, 404, "not_found"),
        ("DELETE", "/api/v1/admin/apps/kvadmin/kv/cfg/mode", None, 404, "not_found"),
        ("PUT", "/api/v1/admin/apps/kvadmin/kv/cfg/x", b"{nope", 400, "invalid_input"),
        ("PUT", "/api/v1/admin/apps/kvadmin/kv/cfg/x", b"null", 400, "invalid_input"),
        (
            "PUT",
            "/api/v1/admin/apps/kvadmin/kv/bad%20name/x",
            b"1",
            400,
            "invalid_input",
        ),
        (
            "GET",
            "/api/v1/admin/apps/kvadmin/kv/cfg?limit=0",
            None,
            400,
            "invalid_input",
        ),
        (
            "GET",
            "/api/v1/admin/apps/kvadmin/kv/cfg?cursor=%25%25",
            None,
            400,
            "invalid_input",
        ),
    ]:
        status, answer = await api.call(method, path, raw=raw)
        assert (status, answer["error"]["code"]) == (expected, code), (
            method,
            path,
            answer,
        )


async def test_docs_admin_api_and_find(api: Api) -> None:
    await make_app(api, "docadmin")
    ids = []
    for n, tier in [(10, "gold"), (9, "silver"), ("10", "gold")]:
        status, doc = await api.call(
            "POST", "/api/v1/admin/apps/docadmin/docs/things", {"n": n, "tier": tier}
        )
        assert status == 201, doc
        assert set(doc) == {"id", "data", "created_at", "updated_at"}
        ids.append(doc["id"])
    status, found = await api.call(
        "POST",
        "/api/v1/admin/apps/docadmin/docs/things/find",
        {"filter": {"n": {"$gt": 9}, "$sort": "-n"}},
    )
    assert status == 200, found
    assert [d["data"]["n"] for d in found["items"]] == [10]
    status, found = await api.call(
        "POST",
        "/api/v1/admin/apps/docadmin/docs/things/find",
        {"filter": {"tier": "gold"}},
    )
    assert [d["id"] for d in found["items"]] == [ids[0], ids[2]]
    status, replaced = await api.call(
        "PUT", f"/api/v1/admin/apps/docadmin/docs/things/{ids[1]}", {"n": 8}
    )
    assert (status, replaced["data"]) == (200, {"n": 8})
    status, page = await api.call(
        "GET", "/api/v1/admin/apps/docadmin/docs/things?limit=2"
    )
    assert [d["id"] for d in page["items"]] == ids[:2]
    status, rest = await api.call(
        "GET",
        f"/api/v1/admin/apps/docadmin/docs/things?limit=2&cursor={page['cursor']}",
    )
    assert (status, [d["id"] for d in rest["items"]]) == (200, ids[2:])
    assert rest["cursor"] is None
    status, _ = await api.call(
        "DELETE", f"/api/v1/admin/apps/docadmin/docs/things/{ids[0]}"
    )
    assert status == 204
    status, _ = await api.call(
        "GET", f"/api/v1/admin/apps/docadmin/docs/things/{ids[0]}"
    )
    assert status == 404
    status, body = await api.call(
        "POST", "/api/v1/admin/apps/docadmin/docs/things/find", {"filter": {"$or": []}}
    )
    assert (status, body["error"]["code"]) == (400, "invalid_input")
    assert "$or" in body["error"]["message"]
    status, body = await api.call(
        "POST", "/api/v1/admin/apps/docadmin/docs/things", [1, 2]
    )
    assert (status, body["error"]["code"]) == (400, "invalid_input")


async def test_pages_under_concurrent_inserts_skip_and_repeat_nothing(api: Api) -> None:
    await make_app(api, "pager")
    await make_route(
        api,
        "pager",
        'local b = ctx.request:json() kv.collection("p"):set(b.key, b.n) return {}',
        "POST",
        "/put",
    )
    originals = [f"k{n:03d}" for n in range(0, 200, 2)]
    for n, key in enumerate(originals):
        await api.call("POST", "/apps/pager/put", {"key": key, "n": n})
    stop = asyncio.Event()

    async def insert_between() -> None:
        n = 1
        while not stop.is_set():
            await api.call("POST", "/apps/pager/put", {"key": f"k{n:03d}", "n": -n})
            n = n + 2 if n < 197 else 1

    writer = asyncio.create_task(insert_between())
    seen: list[str] = []
    cursor = ""
    while True:
        status, page = await api.call(
            "GET", f"/api/v1/admin/apps/pager/kv/p?limit=7&cursor={cursor}"
        )
        assert status == 200, page
        seen += [item["key"] for item in page["items"]]
        await asyncio.sleep(0.01)
        if page["cursor"] is None:
            break
        cursor = page["cursor"]
    stop.set()
    await writer
    assert len(seen) == len(set(seen))  # nothing repeated
    assert set(originals) <= set(seen)  # nothing that was there all along skipped
    assert seen == sorted(seen)


async def test_scripts_of_one_app_cannot_reach_another_apps_data(api: Api) -> None:
    for slug in ("alpha", "beta"):
        await make_app(api, slug)
    await api.call("PUT", "/api/v1/admin/apps/alpha/kv/secrets/token", "alpha-only")
    await api.call("POST", "/api/v1/admin/apps/alpha/docs/private", {"owner": "alpha"})
    await make_route(
        api,
        "beta",
        'return {t = kv.collection("secrets"):get("token"),'
        ' n = #docs.collection("private"):find{}}',
        path="/peek",
    )
    assert await api.call("GET", "/apps/beta/peek") == (200, {"n": 0})
    status, _ = await api.call("GET", "/api/v1/admin/apps/beta/kv/secrets/token")
    assert status == 404
