"""Every saved version of a script is kept, listed and readable; a rollback
saves an old one again as the next version."""

from __future__ import annotations

from tests.http.helpers import Api, make_app, make_route


async def test_versions_are_kept_and_a_rollback_is_a_new_version(api: Api) -> None:
    await make_app(api, "versioned")
    script, _ = await make_route(api, "versioned", 'return "one"', path="/v")
    sid = script["id"]
    for text in ("two", "three"):
        status, _ = await api.call(
            "PUT", f"/api/v1/admin/scripts/{sid}", {"source": f'return "{text}"'}
        )
        assert status == 200
    assert await api.call("GET", "/apps/versioned/v") == (200, "three")
    status, listed = await api.call("GET", f"/api/v1/admin/scripts/{sid}/versions")
    assert status == 200
    assert [v["version"] for v in listed["items"]] == [1, 2, 3]
    assert all(v["actor"] and v["recorded_at"].endswith("Z") for v in listed["items"])
    status, first = await api.call("GET", f"/api/v1/admin/scripts/{sid}/versions/1")
    assert (status, first["source"]) == (200, 'return "one"')
    status, back = await api.call(
        "POST", f"/api/v1/admin/scripts/{sid}/rollback", {"version": 1}
    )
    assert status == 200, back
    assert (back["version"], back["source"]) == (4, 'return "one"')
    assert await api.call("GET", "/apps/versioned/v") == (200, "one")
    for missing in ("9", "x"):
        status, body = await api.call(
            "GET", f"/api/v1/admin/scripts/{sid}/versions/{missing}"
        )
        assert status == 404, body
    status, body = await api.call(
        "POST", f"/api/v1/admin/scripts/{sid}/rollback", {"version": 0}
    )
    assert status == 400, body
