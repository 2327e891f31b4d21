"""An app the caller may not see answers exactly as an absent one (404), so
neither apps nor their things can be probed; a caller who sees the app but
lacks the capability is told so (403)."""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from picloud.domain.access import Role
from picloud.domain.identity import SetMember
from picloud.events import EventMeta
from picloud.server import Server
from tests.http.helpers import Api, create_identity, make_app, make_route

pytestmark = [pytest.mark.ray, pytest.mark.server, pytest.mark.shared_server]

APPS = "/api/v1/admin/apps"


async def test_an_invisible_app_and_its_things_answer_as_absent_ones(
    server: Server, api: Api
) -> None:
    await make_app(api, "hidden")
    script, route = await make_route(api, "hidden", "return {}", path="/x")
    await api.call("PUT", f"{APPS}/hidden/kv/c/k", 1)
    outsider = await create_identity(server, "outsider")  # every scope, no role
    absent = str(uuid.uuid4())
    kv, scripts = f"{APPS}/{{}}/kv/c/k", "/api/v1/admin/scripts/{}"
    # (method, path with {} for the reference, hidden thing, absent one, body)
    cases = [
        ("GET", f"{APPS}/{{}}", "hidden", "absent", None),
        ("PATCH", f"{APPS}/{{}}", "hidden", "absent", {"name": "x"}),
        ("DELETE", f"{APPS}/{{}}", "hidden", "absent", None),
        ("GET", kv, "hidden", "absent", None),
        ("PUT", kv, "hidden", "absent", 2),
        ("GET", f"{APPS}/{{}}/executions?limit=0", "hidden", "absent", None),
        ("GET", scripts, script["id"], absent, None),
        ("PUT", scripts, script["id"], absent, {"source": "return 2"}),
        ("DELETE", "/api/v1/admin/routes/{}", route["id"], absent, None),
    ]
    async with aiohttp.ClientSession() as session:
        them = Api(session, server.url, outsider.bearer)
        for method, path, hidden, missing, body in cases:
            unseen = await them.call(method, path.format(missing), body)
            assert unseen[0] == 404, (path, unseen)
            message = unseen[1]["error"]["message"].replace(missing, hidden)
            assert await them.call(method, path.format(hidden), body) == (
                404,
                {"error": {"code": "not_found", "message": message}},
            )
    # Nothing changed behind the 404s.
    assert await api.call("GET", f"{APPS}/hidden/kv/c/k") == (200, 1)
    _, routes = await api.call("GET", f"{APPS}/hidden/routes")
    assert [r["id"] for r in routes["items"]] == [route["id"]]
    _, kept = await api.call("GET", scripts.format(script["id"]))
    assert kept["source"] == "return {}"


async def test_a_member_without_the_capability_gets_403_not_404(
    server: Server, api: Api
) -> None:
    app = await make_app(api, "seen")
    viewer = await create_identity(server, "viewer")
    assert server.services is not None
    await server.services.control.execute(
        SetMember(app=app["id"], user=viewer.user_id, role=Role.VIEWER),
        EventMeta(actor="test"),
    )
    async with aiohttp.ClientSession() as session:
        them = Api(session, server.url, viewer.bearer)
        assert await them.call("GET", f"{APPS}/seen/kv/c/k") == (
            404,
            {"error": {"code": "not_found", "message": "no key 'k' in 'c'"}},
        )
        status, body = await them.call("PUT", f"{APPS}/seen/kv/c/k", 1)
        assert (status, body["error"]["code"]) == (403, "forbidden")
        assert "kv:write" in body["error"]["message"]
        status, body = await them.call("DELETE", f"{APPS}/seen")
        assert (status, body["error"]["code"]) == (403, "forbidden")
