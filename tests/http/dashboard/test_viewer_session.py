"""A viewer's session at the dashboard, in a real Chromium: every page of an
app they may read shows its data (a secret's name, never its value; the
CORS policy, fetch allowlist and schedule it has) and no control that would
change it, and the POSTs those controls would send, forged with a valid
CSRF token, are refused with 403 and change nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from picloud.domain.access import Role
from picloud.domain.identity import SetMember
from picloud.events import EventMeta
from picloud.server import Server
from tests.http.dashboard.browser import FAST_RETRIES, Person, eventually, sign_in
from tests.http.helpers import Api, create_identity, make_route, make_script

pytestmark = [
    pytest.mark.ray,
    pytest.mark.server,
    pytest.mark.browser,
    pytest.mark.timeout(240),
]

# What a viewer may still post on these pages: signing out, creating an app
# of their own, and an API key of their own (which can do no more than they).
VIEWERS_FORMS = {"/ui/logout", "/ui/apps", "/ui/apps/shop/keys"}
VALUE = "viewer-must-never-see-this-0"


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    return FAST_RETRIES


async def test_a_viewers_session(
    server: Server, api: Api, browser: Browser, screenshots: Path
) -> None:
    started = time.monotonic()
    app = await an_app_with_a_dead_letter(server, api)
    bob = await create_identity(server, "bob", scopes=None)
    assert server.services is not None  # (keys cannot manage members: the CLI's way)
    await server.services.control.execute(
        SetMember(app=app["id"], user=bob.user_id, role=Role.VIEWER),
        EventMeta(actor="test"),
    )
    viewer = await Person.arrive(browser, server.url, screenshots, "viewer")
    try:
        await viewer.goto("/")
        await sign_in(viewer.page, bob.username, bob.password)
        await read_every_page(viewer, app)
        await forge_posts(viewer, api, app)
        viewer.check()
    finally:
        await viewer.leave()
    print(  # noqa: T201  # the figure the report asks for
        f"viewer browser session: {time.monotonic() - started:.1f}s, "
        f"{len(viewer.visited)} pages, screenshots in {screenshots}"
    )


async def an_app_with_a_dead_letter(server: Server, api: Api) -> dict[str, Any]:
    status, app = await api.call(
        "POST", "/api/v1/admin/apps", {"slug": "shop", "name": "Shop"}
    )
    assert status == 201
    await make_script(api, "shop", "local M = {}\nreturn M", "util", kind="module")
    hello, _ = await make_route(
        api, "shop", 'require("util")\nreturn "hi"', path="/hi", name="hello"
    )
    ship = await make_script(api, "shop", 'error("cannot ship")', "ship")
    status, _ = await api.call(
        "POST",
        "/api/v1/admin/apps/shop/triggers/kv",
        {"script_id": ship["id"], "collection": "orders"},
    )
    assert status == 201
    await settings_of(api, hello["id"])
    await api.call("PUT", "/api/v1/admin/apps/shop/kv/orders/o1", {"total": 5})
    await api.call("POST", "/api/v1/admin/apps/shop/docs/orders", {"total": 5})

    async def lettered() -> bool:
        _, page = await api.call("GET", "/api/v1/admin/apps/shop/dead-letters")
        return len(page["items"]) == 1

    await eventually(lettered)
    _, page = await api.call("GET", "/api/v1/admin/apps/shop/dead-letters")
    _, secrets = await api.call("GET", "/api/v1/admin/apps/shop/secrets")
    secret_at = secrets["items"][0]["updated_at"]
    return {**app, "hello": hello, "letter": page["items"][0], "secret_at": secret_at}


async def settings_of(api: Api, script_id: str) -> None:
    """A secret, a CORS policy, a fetch allowlist and a yearly schedule."""
    base = "/api/v1/admin/apps/shop"
    for method, path, body in (
        ("PUT", "/secrets/API_TOKEN", {"value": VALUE}),
        ("PUT", "/settings/cors", {"origins": ["https://shop.example"]}),
        ("PUT", "/settings/fetch", {"allowed_hosts": ["api.example.com"]}),
        (
            "POST",
            "/triggers/schedule",
            {"script_id": script_id, "cron": "0 0 1 1 *", "retry": {"max_attempts": 4}},
        ),
    ):
        status, answer = await api.call(method, base + path, body)
        assert status in (200, 201), answer


async def read_every_page(viewer: Person, app: dict[str, Any]) -> None:
    page = viewer.page
    badge = page.locator("tr[data-app='shop'] [data-testid='letters-badge']")
    await expect(badge).to_have_text("1")
    await viewer.shot("apps")
    letter = app["letter"]["id"]
    pages = {
        "app": ("/ui/apps/shop", "#scripts", "hello"),
        "script": (f"/ui/scripts/{app['hello']['id']}", "#imports", "util"),
        "dead-letters": ("/ui/apps/shop/dead-letters", "#letters", "cannot ship"),
        "dead-letter": (f"/ui/apps/shop/dead-letters/{letter}", "#attempts", "ship"),
        "executions": ("/ui/apps/shop/executions", "#runs", "cannot ship"),
        "events": ("/ui/apps/shop/events", "#events", "dead_letter.created.v1"),
        "kv": ("/ui/apps/shop/kv/orders", "#entries", "o1"),
        "docs": ("/ui/apps/shop/docs/orders", "#docs", '"total": 5'),
        "members": ("/ui/apps/shop/members", "#members", "bob"),
        "settings": ("/ui/apps/shop/settings", "#secrets", "API_TOKEN"),
    }
    for name, (path, what, shows) in pages.items():
        await viewer.goto(path)
        await expect(page.locator(what)).to_contain_text(shows)
        forms = await page.locator("form[method='post']").evaluate_all(
            "forms => forms.map((f) => f.getAttribute('action'))"
        )
        assert set(forms) <= VIEWERS_FORMS, (name, forms)
        assert VALUE not in await page.content(), name
        for label in ("New script", "Edit"):
            await expect(page.get_by_role("link", name=label)).to_have_count(0)
        await viewer.shot(name)
    await settings_shown(viewer)
    # No link leads there; typed in, the form is refused (fetched aside: the
    # browser would log the 403 of a page it navigates to as a console error).
    answer = await page.request.get(viewer.base + "/ui/apps/shop/scripts/new")
    assert answer.status == 403
    assert "403 · forbidden" in await answer.text()


async def settings_shown(viewer: Person) -> None:
    page = viewer.page
    await viewer.goto("/ui/apps/shop/settings")
    await expect(page.locator("#cors-policy")).to_contain_text("https://shop.example")
    await expect(page.locator("#fetch-hosts")).to_have_text("api.example.com")
    for hidden in ("Set a CORS policy", "Change the CORS policy", "fetch allowlist"):
        await expect(page.get_by_text(hidden)).to_have_count(0)
    await viewer.goto("/ui/apps/shop")
    schedule = page.locator("#triggers tr[data-kind='schedule']")
    await expect(schedule.locator(".schedule")).to_have_text("0 0 1 1 * in UTC")
    await expect(schedule.locator(".next-fire")).to_contain_text("-01-01 00:00:00 UTC")
    await expect(schedule).to_contain_text("4 attempts")
    await expect(page.get_by_text("Add a schedule trigger")).to_have_count(0)
    await expect(page.get_by_role("button", name="Remove")).to_have_count(0)


async def forge_posts(viewer: Person, api: Api, app: dict[str, Any]) -> None:
    """What the hidden buttons would post, with the session's own CSRF token."""
    cookies = {c["name"]: c["value"] for c in await viewer.context.cookies()}
    token = cookies["picloud_csrf"]
    letter, hello = app["letter"]["id"], app["hello"]["id"]
    forged = {
        f"/ui/apps/shop/dead-letters/{letter}/replay": {},
        f"/ui/apps/shop/dead-letters/{letter}/resolve": {},
        "/ui/apps/shop/dead-letters/bulk-replay": {},
        f"/ui/scripts/{hello}": {"source": "return 'defaced'"},
        f"/ui/scripts/{hello}/delete": {},
        "/ui/apps/shop/scripts": {"name": "x", "source": "return 1"},
        "/ui/apps/shop/members": {"username": "bob", "role": "owner"},
        "/ui/apps/shop/secrets": {"name": "API_TOKEN", "value": "forged"},
        "/ui/apps/shop/secrets/API_TOKEN/delete": {},
        "/ui/apps/shop/settings/cors": {"origins": "*"},
        "/ui/apps/shop/settings/cors/delete": {},
        "/ui/apps/shop/settings/fetch": {"allowed_hosts": "evil.example"},
        "/ui/apps/shop/settings/fetch/delete": {},
        "/ui/apps/shop/triggers/schedule": {"script_id": hello, "cron": "* * * * *"},
        f"/ui/scripts/{hello}/routes": {
            "method": "POST",
            "path": "/x",
            "dispatch_mode": "async",
            "retry_max_attempts": "9",
        },
    }
    for path, fields in forged.items():
        answer = await viewer.page.request.post(
            viewer.base + path, form={"csrf_token": token, **fields}
        )
        assert answer.status == 403, (path, answer.status)
        assert "not allowed" in await answer.text()
    without_token = await viewer.page.request.post(
        viewer.base + f"/ui/apps/shop/dead-letters/{letter}/resolve", form={}
    )
    assert without_token.status == 403
    assert "csrf_token" in await without_token.text()
    await nothing_changed(api, app)


async def nothing_changed(api: Api, app: dict[str, Any]) -> None:
    _, letter = await api.call(
        "GET", f"/api/v1/admin/apps/shop/dead-letters/{app['letter']['id']}"
    )
    assert letter["resolution"] is None
    _, script = await api.call("GET", f"/api/v1/admin/scripts/{app['hello']['id']}")
    assert script["version"] == 1
    _, scripts = await api.call("GET", "/api/v1/admin/apps/shop/scripts")
    assert sorted(s["name"] for s in scripts["items"]) == ["hello", "ship", "util"]
    _, members = await api.call("GET", "/api/v1/admin/apps/shop/members")
    assert {m["username"]: m["role"] for m in members["items"]}["bob"] == "viewer"
    _, secrets = await api.call("GET", "/api/v1/admin/apps/shop/secrets")
    [secret] = secrets["items"]
    assert (secret["name"], secret["updated_at"]) == ("API_TOKEN", app["secret_at"])
    _, settings = await api.call("GET", "/api/v1/admin/apps/shop/settings")
    assert settings["cors"]["origins"] == ["https://shop.example"]
    assert settings["fetch_allowed_hosts"] == ["api.example.com"]
    _, triggers = await api.call("GET", "/api/v1/admin/apps/shop/triggers")
    assert sorted(t["kind"] for t in triggers["items"]) == ["kv", "schedule"]
    _, routes = await api.call("GET", "/api/v1/admin/apps/shop/routes")
    assert [r["path"] for r in routes["items"]] == ["/hi"]
