"""The dashboard over plain HTTP: how its pages and actions are declared,
the headers of every answer, the sign-in form's token, and the live tail of
an app's events (who may follow it, what it carries, when it stops)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from picloud.domain.access import Capability, Role
from picloud.domain.identity import RemoveMember, SetMember
from picloud.events import EventMeta
from picloud.events.trigger_kinds import TRIGGER_KINDS
from picloud.http._admin_triggers import trigger_endpoint
from picloud.http._api import Endpoint
from picloud.http.dashboard._table import ACTIONS, PAGES
from picloud.server import Server
from tests.http.dashboard.browser import CSP, FAST_RETRIES, eventually
from tests.http.helpers import (
    Api,
    Identity,
    create_identity,
    login,
    make_app,
    make_script,
)

# Every test keeps to its own apps: one server for the module.
pytestmark = pytest.mark.shared_server

# -- declarations (no server) --------------------------------------------------------


def test_every_action_is_authorized_as_the_api_endpoint_it_stands_for() -> None:
    for name, declared in ACTIONS.items():
        if isinstance(declared.api, Endpoint):
            assert declared.needs == declared.api.needs, name
        else:  # the trigger form picks its kind's endpoint
            assert name == "ui_add_trigger"
    kinds = {trigger_endpoint(kind).needs for kind in TRIGGER_KINDS}
    assert kinds == {ACTIONS["ui_add_trigger"].needs} == {Capability.TRIGGERS_MANAGE}


def test_pages_live_under_ui_and_need_a_capability() -> None:
    for page in PAGES:
        assert page.path == "/" or page.path.startswith("/ui/"), page.path
        assert page.needs is not None or page.path == "/", page.path
    for declared in ACTIONS.values():
        assert declared.path.startswith("/ui/"), declared.path


# -- over HTTP -----------------------------------------------------------------------


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    jar = aiohttp.DummyCookieJar()  # cookies are sent by hand, as each test says
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        yield session


@pytest.mark.ray
@pytest.mark.server
async def test_every_answer_of_the_admin_listener_keeps_to_its_origin(
    server: Server, http: aiohttp.ClientSession
) -> None:
    for path, cached in [
        ("/", False),
        ("/ui/apps/nope", False),
        ("/ui/static/dashboard.css", True),
        ("/healthz", True),
    ]:
        async with http.get(server.url + path, allow_redirects=False) as answer:
            headers = answer.headers
            assert headers["Content-Security-Policy"] == CSP, path
            assert headers["X-Frame-Options"] == "DENY", path
            assert headers["Referrer-Policy"] == "no-referrer", path
            assert headers["X-Content-Type-Options"] == "nosniff", path
            assert ("no-store" not in headers.get("Cache-Control", "")) is cached


@pytest.mark.ray
@pytest.mark.server
async def test_signed_out_pages_lead_to_sign_in(
    server: Server, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.url + "/ui/apps/shop", allow_redirects=False) as answer:
        assert (answer.status, answer.headers["Location"]) == (303, "/")
    async with http.post(server.url + "/ui/apps/shop/scripts", data={}) as answer:
        assert answer.status == 401
        assert "Sign in" in await answer.text()


@pytest.mark.ray
@pytest.mark.server
async def test_the_sign_in_form_needs_its_own_token(
    server: Server, admin: Identity, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.url + "/") as answer:
        page = await answer.text()
        cookie = answer.cookies["picloud_login"]
    assert cookie["samesite"] == "Strict"
    assert cookie["httponly"]
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    form = {"username": admin.username, "password": admin.password}
    sent = {"Cookie": f"picloud_login={cookie.value}"}
    tries = [
        ({}, {**form, "csrf_token": match.group(1)}),  # no cookie: a cross-site form
        (sent, {**form, "csrf_token": "forged"}),
        (sent, form),
    ]
    for headers, data in tries:
        async with http.post(
            server.url + "/ui/login", data=data, headers=headers, allow_redirects=False
        ) as refused:
            assert refused.status == 403
            assert "picloud_session" not in refused.cookies
    async with http.post(
        server.url + "/ui/login",
        data={**form, "csrf_token": match.group(1)},
        headers=sent,
        allow_redirects=False,
    ) as signed_in:
        assert (signed_in.status, signed_in.headers["Location"]) == (303, "/")
        assert signed_in.cookies["picloud_session"]["httponly"]


# -- the live tail -------------------------------------------------------------------


async def frames(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, str]]:
    """The server-sent events of ``response``, one dict of fields each."""
    fields: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if not line:
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value


async def next_events(
    response: aiohttp.ClientResponse, wanted: int
) -> list[dict[str, str]]:
    got: list[dict[str, str]] = []
    async with asyncio.timeout(15):
        async for frame in frames(response):
            if frame.get("event") in ("app-event", "ended"):
                got.append(frame)
            if len(got) == wanted or frame.get("event") == "ended":
                return got
    return got


async def member(server: Server, app_id: str, name: str, role: Role | None) -> Identity:
    """A user with a session (no key) and, unless None, a role in the app."""
    person = await create_identity(server, name, scopes=None)
    if role is not None:
        assert server.services is not None
        await server.services.control.execute(
            SetMember(app=app_id, user=person.user_id, role=role), EventMeta(actor="t")
        )
    return person


@pytest.mark.ray
@pytest.mark.server
async def test_the_live_tail_follows_the_app_stream_while_allowed(
    server: Server, api: Api, http: aiohttp.ClientSession
) -> None:
    app = await make_app(api, "tailed")
    await api.call("PUT", "/api/v1/admin/apps/tailed/kv/c/a", 1)
    carol = await member(server, app["id"], "carol", Role.VIEWER)
    outsider = await member(server, app["id"], "dave", None)
    # A user and a key bound to the app: their hashes are system events, never
    # the app's (the tail below must not carry them).
    await create_identity(server, "erin", admin=True, app=app["id"])
    live = server.url + "/ui/apps/tailed/events/live"
    # Someone with no role in the app: it answers as if absent (404).
    for who, status in ((outsider, 404), (carol, 200)):
        signed = await login(server.url, who.username, who.password)
        cookie = {"Cookie": signed.headers["Cookie"]}
        if status == 404:
            async with http.get(live, headers=cookie) as refused:
                assert refused.status == 404
            continue
        await tail_as(server, api, http, app, cookie)


async def tail_as(
    server: Server,
    api: Api,
    http: aiohttp.ClientSession,
    app: dict[str, Any],
    cookie: dict[str, str],
) -> None:
    live = server.url + "/ui/apps/tailed/events/live"
    async with http.get(live + "?after=0", headers=cookie) as tail:
        assert tail.headers["Content-Type"] == "text/event-stream"
        assert tail.headers["Content-Security-Policy"] == CSP
        [first] = await next_events(tail, 1)
        assert (first["id"], '"type":"kv.set.v1"' in first["data"]) == ("1", True)
        await api.call("PUT", "/api/v1/admin/apps/tailed/kv/c/b", 2)
        [second] = await next_events(tail, 1)
        assert second["id"] == "2"
        assert "hash" not in second["data"]
        assert server.services is not None
        carol = await server.services.db.admin.user("carol")
        assert carol is not None
        await server.services.control.execute(
            RemoveMember(app=app["id"], user=carol.id), EventMeta(actor="t")
        )
        await api.call("PUT", "/api/v1/admin/apps/tailed/kv/c/c", 3)
        [ended] = await next_events(tail, 1)
        # No longer a member: the app is invisible to her now, as if absent.
        assert ended == {"event": "ended", "data": "not_found"}
    resumed = {**cookie, "Last-Event-ID": "1"}
    async with http.get(live, headers=resumed) as again:
        assert again.status == 404  # not even a reconnect


# -- bulk replay ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_overrides() -> dict[str, Any]:
    return FAST_RETRIES


@pytest.mark.ray
@pytest.mark.server
async def test_bulk_replay_replays_the_open_letters_the_filter_shows(
    server: Server, api: Api, admin: Identity, http: aiohttp.ClientSession
) -> None:
    await make_app(api, "bulk")
    ship = await make_script(api, "bulk", SHIP, "ship")
    other = await make_script(api, "bulk", 'error("always")', "other")
    for script, collection in ((ship, "jobs"), (other, "misc")):
        status, _ = await api.call(
            "POST",
            "/api/v1/admin/apps/bulk/triggers/kv",
            {"script_id": script["id"], "collection": collection},
        )
        assert status == 201
    await api.call("PUT", "/api/v1/admin/apps/bulk/kv/cfg/broken", True)
    for collection, key in (("jobs", "a"), ("jobs", "b"), ("misc", "x")):
        await api.call("PUT", f"/api/v1/admin/apps/bulk/kv/{collection}/{key}", 1)
    await eventually(lambda: letters_are(api, {None: 3}))
    await api.call("DELETE", "/api/v1/admin/apps/bulk/kv/cfg/broken")
    signed = await login(server.url, admin.username, admin.password)
    cookie = {"Cookie": signed.headers["Cookie"]}
    form = {"csrf_token": signed.body["csrf_token"], "script": ship["id"]}
    async with http.post(
        server.url + "/ui/apps/bulk/dead-letters/bulk-replay",
        data=form,
        headers=cookie,
        allow_redirects=False,
    ) as answer:
        assert answer.status == 303
        shown = answer.headers["Location"]
    async with http.get(server.url + shown, headers=cookie) as page:
        assert "Replayed 2 open dead letters." in await page.text()
    assert await letters_are(api, {"replayed": 2, None: 1})

    async def both_done() -> bool:
        return await has_key(api, "done", "a") and await has_key(api, "done", "b")

    await eventually(both_done)
    _, listed = await api.call("GET", "/api/v1/admin/apps")
    [bulk] = [a for a in listed["items"] if a["slug"] == "bulk"]
    assert bulk["dead_letters_unresolved"] == 1  # other's letter only


SHIP = (
    'if kv.collection("cfg"):get("broken") then error("broken") end\n'
    'kv.collection("done"):set(ctx.event.key, true)'
)


async def letters_are(api: Api, expected: dict[str | None, int]) -> bool:
    _, page = await api.call("GET", "/api/v1/admin/apps/bulk/dead-letters")
    counts: dict[str | None, int] = {}
    for letter in page["items"]:
        counts[letter["resolution"]] = counts.get(letter["resolution"], 0) + 1
    return counts == expected


async def has_key(api: Api, collection: str, key: str) -> bool:
    status, _ = await api.call("GET", f"/api/v1/admin/apps/bulk/kv/{collection}/{key}")
    return status == 200


@pytest.mark.ray
@pytest.mark.server
async def test_a_refused_form_shows_its_page_only_to_who_may_see_it(
    server: Server, api: Api, http: aiohttp.ClientSession
) -> None:
    """Making one's own API key needs nothing on the app, its page does: an
    outsider's mistaken key form for another app shows them nothing of it."""
    app = await make_app(api, "private")
    owner = await member(server, app["id"], "olga", Role.OWNER)
    outsider = await member(server, app["id"], "mallory", None)
    for who, shown in ((owner, 200), (outsider, 404)):  # invisible: as absent
        signed = await login(server.url, who.username, who.password)
        async with http.post(
            server.url + "/ui/apps/private/keys",
            data={"csrf_token": signed.body["csrf_token"], "name": "k"},  # no scope
            headers={"Cookie": signed.headers["Cookie"]},
        ) as answer:
            page = await answer.text()
        assert answer.status == shown, page
        assert ("give at least one scope" in page) is (shown == 200)
        assert ("olga" in page) is (shown == 200)  # the members list


@pytest.mark.ray
@pytest.mark.server
async def test_an_editor_sets_secrets_but_not_the_apps_settings(
    server: Server, api: Api, http: aiohttp.ClientSession
) -> None:
    """Secrets need script:write (an editor holds it), CORS and the fetch
    allowlist app:write (an owner's): each form is shown, and its POST
    allowed, exactly as its API endpoint allows."""
    app = await make_app(api, "tuned")
    editor = await member(server, app["id"], "eve", Role.EDITOR)
    signed = await login(server.url, editor.username, editor.password)
    cookie = {"Cookie": signed.headers["Cookie"]}
    settings_page = server.url + "/ui/apps/tuned/settings"
    async with http.get(settings_page, headers=cookie) as answer:
        page = await answer.text()
    assert 'action="/ui/apps/tuned/secrets"' in page
    assert 'action="/ui/apps/tuned/settings/cors"' not in page
    assert 'action="/ui/apps/tuned/settings/fetch"' not in page
    for path, form, status in (
        ("/ui/apps/tuned/secrets", {"name": "K", "value": "v-secret-1"}, 303),
        ("/ui/apps/tuned/settings/cors", {"origins": "*"}, 403),
        ("/ui/apps/tuned/settings/fetch", {"allowed_hosts": "a.example"}, 403),
    ):
        async with http.post(
            server.url + path,
            data={"csrf_token": signed.body["csrf_token"], **form},
            headers=cookie,
            allow_redirects=False,
        ) as answer:
            assert answer.status == status, (path, await answer.text())
    async with http.get(settings_page, headers=cookie) as answer:
        page = await answer.text()
    assert 'data-secret="K"' in page
    assert "v-secret-1" not in page
    _, settings = await api.call("GET", "/api/v1/admin/apps/tuned/settings")
    assert (settings["cors"], settings["fetch_allowed_hosts"]) == (None, None)
