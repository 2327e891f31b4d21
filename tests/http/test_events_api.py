"""The events API over a real server: pages, filters, access, redaction, the
live tail (server-sent events)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import aiohttp
import pytest

from picloud.domain.access import Role, Scope
from picloud.domain.identity import SetMember
from picloud.events import EventMeta
from picloud.server import Server
from tests.http.helpers import Api, create_identity, make_app, make_route

pytestmark = [pytest.mark.ray, pytest.mark.server]

EVENTS = "/api/v1/admin/events"
APPS = "/api/v1/admin/apps"
SECRETS = ("password_hash", "secret_hash", "$argon2")


async def read_all(api: Api, query: str, limit: int = 3) -> list[dict[str, Any]]:
    """Every event the filters match, page by page through ``next``."""
    items: list[dict[str, Any]] = []
    after = ""
    while True:
        status, page = await api.call("GET", f"{EVENTS}?{query}&limit={limit}{after}")
        assert status == 200, page
        items += page["items"]
        after = f"&after={page['next']}"
        if len(page["items"]) < limit:
            return items


def leaked(text: str, key: str = "") -> list[str]:
    """The secrets in ``text``: hashes of any kind, and ``key`` or its hash."""
    secrets = [*SECRETS, key, hashlib.sha256(key.encode()).hexdigest()] if key else []
    return [s for s in secrets or SECRETS if s in text]


async def test_pages_filters_access_and_redaction(server: Server, api: Api) -> None:
    await make_app(api, "ev-a")
    await make_app(api, "ev-b")
    for n in range(4):
        status, _ = await api.call("PUT", f"{APPS}/ev-a/kv/c/k{n}", {"n": n})
        assert status == 200
    await api.call("PUT", f"{APPS}/ev-b/kv/c/k", 1)

    everything = await read_all(api, "", limit=4)
    positions = [e["position"] for e in everything]
    assert len(positions) == len(set(positions))  # no event twice
    types = {e["type"] for e in everything}
    assert {"user.created.v1", "api_key.created.v1", "app.created.v1"} <= types
    key = api.headers["Authorization"].removeprefix("Bearer ")
    assert leaked(str(everything), key) == []  # no hash or key of any kind leaves
    created = [e for e in everything if e["type"] == "user.created.v1"]
    assert created
    assert "username" in created[0]["data"]

    only_a = await read_all(api, "app=ev-a&type=kv.set.v1")
    assert [e["data"]["key"] for e in only_a] == ["k0", "k1", "k2", "k3"]
    assert {e["stream"] for e in only_a} == {f"app-{only_a[0]['data']['app_id']}"}
    assert [e["version"] for e in only_a] == sorted(e["version"] for e in only_a)

    # A viewer of ev-a reads ev-a's stream and nothing else.
    viewer = await create_identity(server, "evviewer", scopes=frozenset(Scope))
    assert server.services is not None
    app_a = only_a[0]["data"]["app_id"]
    member = SetMember(app=app_a, user=viewer.user_id, role=Role.VIEWER)
    await server.services.control.execute(member, EventMeta(actor="test"))
    other = Api(api.session, api.base, viewer.bearer)
    mine = await read_all(other, "app=ev-a")
    assert mine == await read_all(api, "app=ev-a")
    status, body = await other.call("GET", EVENTS)  # the whole log: admins'
    assert status == 403, body
    # An app the caller cannot see answers as an absent one (and the system
    # stream is no app of theirs).
    for query in ("app=ev-b", "stream=system", f"stream=app-{app_a}x"):
        status, body = await other.call("GET", f"{EVENTS}?{query}")
        assert status == 404, (query, body)
    status, body = await api.call("GET", f"{EVENTS}?type=no.such.v1")
    assert status == 400
    status, body = await api.call("GET", f"{EVENTS}?after=garbage")
    assert status == 400


async def test_stored_requests_leave_without_credentials(api: Api) -> None:
    await make_app(api, "ev-req")
    await make_route(
        api, "ev-req", "return {}", "POST", "/later", dispatch_mode="async"
    )
    status, _ = await api.call(
        "POST",
        "/apps/ev-req/later?token=abc&page=2",
        {"x": 1},
        headers={
            "Authorization": "Basic c2VjcmV0",
            "X-Api-Key": "k-123",
            "Cookie": "other=1",
            "X-Trace": "t-1",
        },
    )
    assert status == 202
    [accepted] = await read_all(api, "app=ev-req&type=invocation.accepted.v1")
    request = accepted["data"]["request"]
    assert request["headers"].get("x-trace") == "t-1"
    assert not {"authorization", "x-api-key", "cookie"} & set(request["headers"])
    assert request["query"] == {"page": "2"}
    assert "c2VjcmV0" not in str(accepted)
    assert "k-123" not in str(accepted)


async def sse_messages(
    response: aiohttp.ClientResponse, count: int, seen: list[str]
) -> list[dict[str, str]]:
    """The next ``count`` messages (comments go to ``seen``)."""
    messages: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    while len(messages) < count:
        line = (await response.content.readline()).decode().rstrip("\n")
        if line.startswith(":"):
            seen.append(line)
        elif line == "":
            if fields:
                messages.append(fields)
            fields = {}
        else:
            name, _, value = line.partition(": ")
            fields[name] = value
    return messages


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    return {"events_tail_heartbeat_s": 1, "events_tail_poll_ms": 50}


async def test_the_live_tail_follows_resumes_and_heartbeats(
    server: Server, api: Api
) -> None:
    await make_app(api, "ev-tail")
    url = f"{server.url}{EVENTS}/stream?app=ev-tail&type=kv.set.v1"
    comments: list[str] = []
    async with api.session.get(url, headers=api.headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        for n in range(3):
            await api.call("PUT", f"{APPS}/ev-tail/kv/c/k{n}", n)
        first = await asyncio.wait_for(sse_messages(response, 3, comments), 10)
        last_id = first[1]["id"]
        # a quiet tail sends heartbeats
        line = await asyncio.wait_for(response.content.readline(), 10)
        assert line.startswith(b": heartbeat"), line
    # the client hung up; a reconnect with Last-Event-ID resumes after k1
    await api.call("PUT", f"{APPS}/ev-tail/kv/c/k3", 3)
    assert first[2]["id"] != last_id
    headers = {**api.headers, "Last-Event-ID": last_id}
    async with api.session.get(url, headers=headers) as response:
        rest = await asyncio.wait_for(sse_messages(response, 2, []), 10)
    keys = [m["data"] for m in first[:2] + rest]
    assert ['"k0"' in keys[0], '"k1"' in keys[1], '"k2"' in keys[2]] == [True] * 3
    assert '"k3"' in keys[3]
