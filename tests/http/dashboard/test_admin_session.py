"""An admin's whole session at the dashboard, in a real Chromium, as a person
would: from the first-run page to signing out, asserting what is on screen.

First run, sign in, create an app, a module and an endpoint that requires
it (after a validation error that names its line), a route called on the
apps listener, a KV trigger whose handler always fails, writes until they
dead-letter (the badge counts them), the dead letter's payload and attempts,
the handler fixed and the letter replayed, another resolved, the badge back
to 0; then the execution log, the document finder, the live event tail,
members and an API key shown once and revoked. Every page is shot at desktop
and at 375 px (without sideways scrolling), every answer carried the CSP,
and the console stayed clean.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from picloud.server import Server
from tests.http.dashboard.browser import FAST_RETRIES, Person, eventually, sign_in
from tests.http.helpers import create_identity

pytestmark = [
    pytest.mark.ray,
    pytest.mark.server,
    pytest.mark.browser,
    pytest.mark.timeout(300),
]

UTIL = 'local M = {}\nfunction M.greet(who)\n  return "hello, " .. who\nend\nreturn M'
NOT_A_MODULE = 'local M = {}\nprint("side effect")\nreturn M'
HELLO = (
    'local util = require("util")\n'
    "return {greeting = util.greet(ctx.request.params.who)}"
)
ORDER = (
    "local id = ctx.request.params.id\n"
    "local total = tonumber(ctx.request.query.total)\n"
    'kv.collection("orders"):set(id, {total = total})\n'
    'docs.collection("orders"):create({order = id, total = total})\n'
    "return {ok = true}"
)
SHIP_BROKEN = 'error("cannot ship " .. ctx.event.key)'
SHIP_FIXED = 'kv.collection("shipped"):set(ctx.event.key, true)'


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    return FAST_RETRIES


async def test_an_admins_session(
    server: Server, browser: Browser, screenshots: Path
) -> None:
    started = time.monotonic()
    alice = await first_run_and_sign_in(server, browser, screenshots)
    try:
        await create_app_and_scripts(alice)
        await call_the_route(server, alice)
        await trigger_until_dead_letters(server, alice)
        await replay_and_resolve(alice)
        await browse_the_logs_and_data(server, alice)
        await manage_members_and_keys(server, alice)
        await sign_out(alice)
        alice.check()
    finally:
        await alice.leave()
    print(  # noqa: T201  # the figure the report asks for
        f"admin browser session: {time.monotonic() - started:.1f}s, "
        f"{len(alice.visited)} pages, screenshots in {screenshots}"
    )


async def first_run_and_sign_in(
    server: Server, browser: Browser, screenshots: Path
) -> Person:
    alice = await Person.arrive(browser, server.url, screenshots, "admin")
    page = alice.page
    await alice.goto("/")
    await expect(page.get_by_role("heading", name="Welcome to PiCloud")).to_be_visible()
    await expect(page.locator("pre.command")).to_have_text(
        "picloud admin create-user NAME --admin"
    )
    await alice.shot("first-run")
    admin = await create_identity(server, "alice", admin=True, scopes=None)
    await page.reload()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await alice.shot("sign-in")
    await sign_in(page, admin.username, "not the password")
    await expect(page.get_by_role("alert")).to_contain_text(
        "wrong username or password"
    )
    # Signing in by keyboard alone: the name is focused on arrival.
    await page.keyboard.press("Control+A")
    await page.keyboard.type(admin.username)
    await page.keyboard.press("Tab")
    await page.keyboard.type(admin.password)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Apps")).to_be_visible()
    await expect(page.get_by_text("No apps you can see yet.")).to_be_visible()
    await expect(page.locator(".account")).to_contain_text("alice")
    return alice


async def create_app_and_scripts(alice: Person) -> None:
    page = alice.page
    await page.get_by_label("Name").fill("Shop")
    await page.get_by_label("Slug").fill("shop")
    await alice.shot("apps-empty")
    await page.get_by_role("button", name="Create app").click()
    await expect(page.get_by_role("heading", name="Shop")).to_be_visible()
    await expect(page.get_by_role("status")).to_have_text("App created.")
    # A module with a statement at top level: refused, naming its line.
    await new_script(page, "util", "module", NOT_A_MODULE)
    await expect(page.get_by_role("alert")).to_contain_text("Line 2")
    await expect(page.get_by_role("alert")).to_contain_text("util:2:")
    await expect(page.locator(".gutter .bad")).to_have_text("2")
    await expect(page.get_by_label("Kind")).to_have_value("module")
    await alice.shot("script-refused")
    await page.get_by_label("Source (Lua 5.4)").fill(UTIL)
    await page.get_by_role("button", name="Create script").click()
    await expect(page.get_by_role("heading", name="util module")).to_be_visible()
    await page.get_by_role("link", name="Shop", exact=True).click()
    await new_script(page, "hello", "endpoint", HELLO)
    await expect(page.locator("#imports")).to_have_text("util")
    await add_route(page, "GET", "/hello/{who}")
    await expect(page.locator("#routes table")).to_contain_text(
        "/apps/shop/hello/{who}"
    )
    await alice.shot("script-endpoint")
    await page.locator("#imports").get_by_role("link", name="util").click()
    await expect(page.locator("#used-by")).to_have_text("hello")
    await alice.shot("script-module")


async def new_script(page: Page, name: str, kind: str, source: str) -> None:
    await page.get_by_role("link", name="New script").click()
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Kind").select_option(kind)
    await page.get_by_label("Source (Lua 5.4)").fill(source)
    await page.get_by_role("button", name="Create script").click()


async def add_route(page: Page, method: str, path: str) -> None:
    await page.get_by_label("Method").select_option(method)
    await page.get_by_label("Path").fill(path)
    await page.get_by_role("button", name="Add route").click()
    await expect(page.get_by_role("status")).to_have_text("Route added.")


async def call_the_route(server: Server, alice: Person) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.apps_url}/apps/shop/hello/world") as answer,
    ):
        assert answer.status == 200
        assert await answer.json() == {"greeting": "hello, world"}
        ran = answer.headers["X-PiCloud-Execution-Id"]
    page = alice.page
    await page.get_by_role("link", name="Shop", exact=True).click()
    await expect(page.locator("#runs tbody tr")).to_have_count(1)
    await expect(page.locator("#runs")).to_contain_text("route:GET /hello/{who}")
    await alice.goto("/ui/apps/shop/executions")
    await page.get_by_label("Execution id").fill(ran)
    await page.get_by_role("button", name="Open").click()
    await expect(page.locator("#execution-id")).to_have_text(ran)
    await expect(page.locator(".badge.status-ok")).to_be_visible()
    await alice.shot("execution")


async def trigger_until_dead_letters(server: Server, alice: Person) -> None:
    page = alice.page
    await alice.goto("/ui/apps/shop")
    await new_script(page, "order", "endpoint", ORDER)
    await add_route(page, "POST", "/orders/{id}")
    await page.get_by_role("link", name="Shop", exact=True).click()
    await new_script(page, "ship", "endpoint", SHIP_BROKEN)
    await page.get_by_role("link", name="Shop", exact=True).click()
    await page.get_by_text("Add a kv trigger").click()
    kv_form = page.locator("form[action='/ui/apps/shop/triggers/kv']")
    await kv_form.get_by_label("Handler script").select_option(label="ship")
    await kv_form.get_by_label("set", exact=True).check()
    await kv_form.get_by_label("Collection").fill("orders")
    await kv_form.get_by_role("button", name="Add kv trigger").click()
    await expect(page.get_by_role("status")).to_have_text("Trigger added.")
    trigger = page.locator("#triggers tbody tr")
    await expect(trigger).to_have_count(1)
    for shown in ("kv", "ship", "set", "orders"):
        await expect(trigger).to_contain_text(shown)
    await alice.shot("app")
    async with aiohttp.ClientSession() as http:
        for order, total in (("o1", 5), ("o2", 50)):
            url = f"{server.apps_url}/apps/shop/orders/{order}?total={total}"
            async with http.post(url) as answer:
                assert answer.status == 200, await answer.text()
    await alice.goto("/")
    badge = page.locator("tr[data-app='shop'] [data-testid='letters-badge']")

    async def two_letters() -> bool:
        await page.reload()
        return await badge.inner_text() == "2"

    await eventually(two_letters)
    await expect(badge).to_have_class(re.compile(r"\bdanger\b"))
    await alice.shot("apps-badge-2")


async def replay_and_resolve(alice: Person) -> None:
    page = alice.page
    await page.locator("tr[data-app='shop']").get_by_role("link", name="2").click()
    await expect(page.locator("li.letter")).to_have_count(2)
    first = page.locator("li.letter", has_text="orders/o1")
    await first.get_by_text("Payload").click()
    await expect(first.locator("pre.json")).to_contain_text('"key": "o1"')
    await alice.shot("dead-letters")
    await first.get_by_role("link").first.click()
    await expect(page.locator("#payload")).to_contain_text('"key": "o1"')
    attempts = page.locator("#attempts > li")
    await expect(attempts).to_have_count(2)
    for n in (1, 2):
        attempt = attempts.nth(n - 1)
        await attempt.get_by_text(f"Attempt {n}").click()
        await expect(attempt.locator(".error-text")).to_contain_text("cannot ship o1")
    await alice.shot("dead-letter")
    letter_page = alice.path()
    await fix_the_handler(alice)
    await alice.goto(letter_page)
    await alice.tab_to("Replay")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("Dead letter replayed")
    await expect(page.locator(".facts")).to_contain_text("replayed")
    await alice.goto("/ui/apps/shop/kv")

    async def shipped() -> bool:
        await page.reload()
        return await page.get_by_role("link", name="shipped").count() == 1

    await eventually(shipped)
    await page.get_by_role("link", name="shipped").click()
    await expect(page.locator("#entries")).to_contain_text("o1")
    await alice.shot("kv")
    await resolve_the_other(alice)


async def fix_the_handler(alice: Person) -> None:
    page = alice.page
    await alice.goto("/ui/apps/shop")
    await page.locator("tr[data-script='ship']").get_by_role("link").click()
    await page.get_by_role("link", name="Edit").click()
    await expect(page.get_by_text("Version 1;")).to_be_visible()
    await page.get_by_label("Source (Lua 5.4)").fill(SHIP_FIXED)
    await alice.shot("script-edit")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_have_text("Script saved.")
    await expect(page.get_by_text("Version 2,")).to_be_visible()


async def resolve_the_other(alice: Person) -> None:
    page = alice.page
    await alice.goto("/ui/apps/shop/dead-letters")
    other = page.locator("li.letter", has_text="orders/o2")
    await expect(page.locator("li.letter")).to_have_count(1)  # o1 is replayed
    await expect(other).to_have_count(1)
    await alice.tab_to("Mark resolved", within="li.letter")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_have_text(
        "Dead letter marked resolved."
    )
    await expect(page.get_by_text("No open dead letters.")).to_be_visible()
    await page.get_by_label("Show").select_option("all")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("li.letter .badge.res-replayed")).to_have_count(1)
    await expect(page.locator("li.letter .badge.res-resolved")).to_have_count(1)
    await alice.goto("/")
    badge = page.locator("tr[data-app='shop'] [data-testid='letters-badge']")
    await expect(badge).to_have_text("0")
    await expect(badge).not_to_have_class(re.compile(r"\bdanger\b"))
    await alice.shot("apps-badge-0")


async def browse_the_logs_and_data(server: Server, alice: Person) -> None:
    page = alice.page
    await alice.goto("/ui/apps/shop/executions")
    await page.get_by_label("Status").select_option("error")
    await page.get_by_label("Script").select_option(label="ship")
    await page.get_by_role("button", name="Filter").click()
    runs = page.locator("#runs tbody tr")
    await expect(runs).to_have_count(4)  # two attempts of each order
    await expect(page.locator("#runs tbody tr[data-status='ok']")).to_have_count(0)
    await expect(runs.first).to_contain_text("cannot ship")
    await page.get_by_label("Started from (UTC)").fill("2999-01-01T00:00:00")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.get_by_text("No executions.")).to_be_visible()
    await page.get_by_label("Started from (UTC)").fill("2000-01-01T00:00:00")
    await page.get_by_label("until (UTC)").fill("2001-01-01T00:00:00")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.get_by_text("No executions.")).to_be_visible()
    await page.get_by_label("until (UTC)").fill("2999-01-01T00:00:00")
    await page.get_by_role("button", name="Filter").click()
    await expect(runs).to_have_count(4)
    await alice.shot("executions")
    await find_documents(alice)
    await live_tail(server, alice)


async def find_documents(alice: Person) -> None:
    page = alice.page
    await alice.goto("/ui/apps/shop/docs")
    await page.get_by_role("link", name="orders").click()
    await expect(page.locator("#docs > li")).to_have_count(2)
    await page.get_by_role("textbox", name="Find").fill('{"total": {"$gt": 10}}')
    await page.get_by_role("button", name="Find").click()
    await expect(page.locator("#docs > li")).to_have_count(1)
    await expect(page.locator("#docs")).to_contain_text('"order": "o2"')
    await alice.shot("docs-find")
    await page.get_by_role("textbox", name="Find").fill('{"$or": []}')
    await page.get_by_role("button", name="Find").click()
    await expect(page.get_by_role("alert")).to_contain_text("$or")


async def live_tail(server: Server, alice: Person) -> None:
    page = alice.page
    await alice.goto("/ui/apps/shop/events")
    await expect(page.locator("#tail-status")).to_have_text("Live tail: connected.")
    before = await page.locator("#events > li").count()
    assert before > 10
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.apps_url}/apps/shop/orders/o3?total=1") as answer,
    ):
        assert answer.status == 200
    fresh = page.locator("#events > li.fresh")
    await expect(
        fresh.filter(has_text="kv.set.v1").filter(has_text="orders o3")
    ).to_have_count(1)
    await expect(fresh.filter(has_text="doc.created.v1")).to_have_count(1)
    text = await page.locator("main").inner_text()
    assert "hash" not in text  # no credential's hash is in an app's stream
    await alice.shot("events")


async def manage_members_and_keys(server: Server, alice: Person) -> None:
    page = alice.page
    bob = await create_identity(server, "bob", scopes=None)
    await alice.goto("/ui/apps/shop/members")
    await page.get_by_label("Username").fill(bob.username)
    await page.get_by_label("Role", exact=True).select_option("viewer")
    await page.get_by_role("button", name="Set role").click()
    await expect(page.get_by_role("status")).to_have_text("Member's role set.")
    await expect(page.locator("tr[data-member='bob']")).to_contain_text("viewer")
    await page.get_by_text("Create an API key for this app").click()
    await page.get_by_label("Label").fill("ci")
    await page.get_by_label("app:read", exact=True).check()
    await page.get_by_role("button", name="Create key").click()
    await expect(
        page.get_by_text("Copy it now: it is shown this once.")
    ).to_be_visible()
    secret = await page.get_by_label("The key").input_value()
    assert secret.startswith("pic_")
    await alice.shot("key-created")
    assert await apps_seen_with(server, secret) == 200
    await page.get_by_role("link", name="Done").click()
    row = page.locator("tr[data-key='ci']")
    await expect(row).to_contain_text(secret[:12])
    assert secret not in await page.content()  # shown once, never again
    await alice.shot("members")
    await row.get_by_role("button", name="Revoke").click()
    await expect(page.get_by_role("status")).to_have_text("API key revoked.")
    await expect(row).to_contain_text("revoked")
    assert await apps_seen_with(server, secret) == 401


async def apps_seen_with(server: Server, key: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{server.url}/api/v1/admin/apps",
            headers={"Authorization": f"Bearer {key}"},
        ) as answer,
    ):
        return answer.status


async def sign_out(alice: Person) -> None:
    page = alice.page
    await alice.goto("/")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await alice.goto("/ui/apps/shop")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
