"""An admin at the dashboard's newer forms, in a real Chromium: an app's
secrets (the name listed, the value never in any page), its CORS policy
(which the apps listener then answers preflights with) and fetch allowlist,
a schedule trigger (a bad cron refused in place; its next fire time shown;
its runs found by the execution log's trigger filter, with their attempt),
and retry policies set on a trigger and on an async route. Every page is
shot at desktop and at 375 px, and the console stays clean."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from picloud.server import Server
from tests.http.dashboard.browser import FAST_RETRIES, Person, eventually, sign_in
from tests.http.helpers import Api, Identity, make_app, make_route, make_script

pytestmark = [
    pytest.mark.ray,
    pytest.mark.server,
    pytest.mark.browser,
    pytest.mark.timeout(300),
]

VALUE = "hunter2-Never-Shown-0n-a-Page"
TICK = 'kv.collection("ticks"):set(ctx.event.scheduled_at, ctx.attempt)'
WHEN = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    return FAST_RETRIES


async def test_secrets_settings_schedules_and_retries(
    server: Server, api: Api, admin: Identity, browser: Browser, screenshots: Path
) -> None:
    await make_app(api, "shop")
    await make_script(api, "shop", TICK, "tick")
    await make_route(api, "shop", 'return "hi"', path="/hi", name="hello")
    alice = await Person.arrive(browser, server.url, screenshots, "settings")
    try:
        await alice.goto("/")
        await sign_in(alice.page, admin.username, admin.password)
        await expect(alice.page.get_by_role("heading", name="Apps")).to_be_visible()
        await secrets(alice)
        await cors(server, alice)
        await fetch_allowlist(alice)
        await schedule_trigger(alice)
        await async_route_retries(alice)
        await executions_by_trigger(server, alice)
        alice.check()
    finally:
        await alice.leave()


async def secrets(alice: Person) -> None:
    page = alice.page
    await alice.goto("/ui/apps/shop")
    await page.get_by_role("link", name="Settings").click()
    await expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    await expect(page.locator("#secrets")).to_contain_text("No secrets yet.")
    form = page.get_by_role("form", name="Set a secret")
    # A name the rule refuses: the page again with the message, and the value
    # typed not sent back in it.
    await form.get_by_label("Name").fill("1-bad")
    await form.get_by_label("Value").fill(VALUE)
    await form.get_by_role("button", name="Set secret").click()
    await expect(page.get_by_role("alert")).to_contain_text("secret name")
    await expect(form.get_by_label("Name")).to_have_value("1-bad")
    await expect(form.get_by_label("Value")).to_have_value("")
    assert VALUE not in await page.content()
    for name in ("API_TOKEN", "OLD_TOKEN"):
        await form.get_by_label("Name").fill(name)
        await form.get_by_label("Value").fill(VALUE)
        await form.get_by_role("button", name="Set secret").click()
        await expect(page.get_by_role("status")).to_have_text("Secret set.")
    rows = page.locator("#secret-list tbody tr")
    await expect(rows).to_have_count(2)
    token = page.locator("tr[data-secret='API_TOKEN']")
    await expect(token).to_contain_text("API_TOKEN")
    await expect(token.locator("td").nth(1)).to_have_text(WHEN)
    assert VALUE not in await page.content()
    await expect(form.get_by_label("Value")).to_have_value("")
    await alice.shot("secrets")
    await (
        page.locator("tr[data-secret='OLD_TOKEN']")
        .get_by_role("button", name="Delete")
        .click()
    )
    await expect(page.get_by_role("status")).to_have_text("Secret deleted.")
    await expect(rows).to_have_count(1)
    await expect(page.locator("tr[data-secret='OLD_TOKEN']")).to_have_count(0)


async def cors(server: Server, alice: Person) -> None:
    page = alice.page
    policy = page.locator("#cors-policy")
    await expect(policy).to_contain_text("No CORS policy")
    await page.get_by_text("Set a CORS policy").click()
    await page.get_by_label("Origins").fill("ftp://shop.example")
    await page.get_by_role("button", name="Save CORS policy").click()
    await expect(page.get_by_role("alert")).to_contain_text("scheme://host")
    await expect(page.get_by_label("Origins")).to_have_value("ftp://shop.example")
    await page.get_by_label("Origins").fill("https://shop.example")
    await page.get_by_label("Methods").fill("get, post")
    await page.get_by_label("Request headers").fill("X-Token")
    await page.get_by_role("button", name="Save CORS policy").click()
    await expect(page.get_by_role("status")).to_have_text("CORS policy saved.")
    for shown in ("https://shop.example", "GET, POST", "x-token", "600 s"):
        await expect(policy).to_contain_text(shown)
    await alice.shot("cors")
    assert await allowed_origin(server, "https://shop.example") == (
        204,
        "https://shop.example",
    )
    await page.get_by_role("button", name="Remove CORS policy").click()
    await expect(page.get_by_role("status")).to_contain_text("CORS policy removed")
    await expect(policy).to_contain_text("No CORS policy")
    assert (await allowed_origin(server, "https://shop.example"))[1] is None


async def allowed_origin(server: Server, origin: str) -> tuple[int, str | None]:
    """The apps listener's answer to a browser's preflight from ``origin``."""
    headers = {"Origin": origin, "Access-Control-Request-Method": "GET"}
    async with (
        aiohttp.ClientSession() as http,
        http.options(f"{server.apps_url}/apps/shop/hi", headers=headers) as answer,
    ):
        return answer.status, answer.headers.get("Access-Control-Allow-Origin")


async def fetch_allowlist(alice: Person) -> None:
    page = alice.page
    hosts = page.locator("#fetch-hosts")
    await expect(hosts).to_have_text("Any public host.")
    await page.get_by_text("Set the app's fetch allowlist").click()
    field = page.get_by_role("textbox", name=re.compile("^Hosts"))
    await field.fill("api.example.com\nhttps://bad.example/path")
    await page.get_by_role("button", name="Save allowlist").click()
    await expect(page.get_by_role("alert")).to_contain_text("invalid host")
    await field.fill("api.example.com\n*.Example.org")
    await page.get_by_role("button", name="Save allowlist").click()
    await expect(page.get_by_role("status")).to_have_text("Fetch allowlist saved.")
    await expect(hosts.locator("li")).to_have_text(["*.example.org", "api.example.com"])
    await expect(page.locator("#fetch")).to_contain_text("The app's own list applies")
    await alice.shot("fetch-hosts")
    await page.get_by_role("button", name="Use the deployment's list").click()
    await expect(page.get_by_role("status")).to_contain_text("deployment's applies")
    await expect(hosts).to_have_text("Any public host.")


async def schedule_trigger(alice: Person) -> None:
    page = alice.page
    await alice.goto("/ui/apps/shop")
    await page.get_by_text("Add a schedule trigger").click()
    form = page.locator("form[action='/ui/apps/shop/triggers/schedule']")
    await form.get_by_label("Handler script").select_option(label="tick")
    await form.get_by_label("Cron").fill("every morning")
    await form.get_by_label("Time zone").fill("Europe/Paris")
    await form.get_by_role("button", name="Add schedule trigger").click()
    await expect(page.get_by_role("alert")).to_contain_text("cron")
    # The form is open again with what was typed.
    await expect(form.get_by_label("Cron")).to_have_value("every morning")
    await expect(form.get_by_label("Time zone")).to_have_value("Europe/Paris")
    await alice.shot("schedule-refused")
    await form.get_by_label("Cron").fill("0 9 * * mon-fri")
    await form.get_by_label("Max attempts").fill("5")
    await form.get_by_label("First pause (ms)").fill("100")
    await form.get_by_label("Longest pause (ms)").fill("2000")
    await form.get_by_role("button", name="Add schedule trigger").click()
    await expect(page.get_by_role("status")).to_have_text("Trigger added.")
    row = page.locator("#triggers tr[data-kind='schedule']")
    await expect(row).to_have_count(1)
    await expect(row.locator(".schedule")).to_have_text(
        "0 9 * * mon-fri in Europe/Paris"
    )
    await expect(row.locator(".last-fired")).to_have_text("not yet")
    # 09:00 in Paris is 07:00 or 08:00 UTC, on a weekday.
    await expect(row.locator(".next-fire")).to_have_text(
        re.compile(r"^\d{4}-\d\d-\d\d 0[78]:00:00 UTC$")
    )
    await expect(row).to_contain_text("5 attempts, pauses 100\N{EN DASH}2000 ms")
    await alice.shot("schedule-added")


async def async_route_retries(alice: Person) -> None:
    page = alice.page
    await page.locator("tr[data-script='hello']").get_by_role("link").click()
    form = page.get_by_role("form", name="Add a route")
    await form.get_by_label("Method").select_option("POST")
    await form.get_by_label("Path").fill("/jobs")
    await form.get_by_label("Max attempts").fill("3")
    await form.get_by_role("button", name="Add route").click()
    # A sync route is never retried: refused, as the API refuses it.
    await expect(page.get_by_role("alert")).to_contain_text("never retried")
    await expect(form.get_by_label("Max attempts")).to_have_value("3")
    await form.get_by_label("Dispatch").select_option("async")
    await form.get_by_role("button", name="Add route").click()
    await expect(page.get_by_role("status")).to_have_text("Route added.")
    row = page.locator("tr[data-route='POST /jobs']")
    await expect(row).to_contain_text("3 attempts")
    await expect(page.locator("tr[data-route='GET /hi']")).to_contain_text(
        "none (sync)"
    )
    await alice.shot("route-retries")


async def executions_by_trigger(server: Server, alice: Person) -> None:
    """Runs of a schedule firing every 2 s, told from a route's by the filter."""
    page = alice.page
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.apps_url}/apps/shop/hi") as answer,
    ):
        assert answer.status == 200
    await alice.goto("/ui/apps/shop")
    await page.get_by_text("Add a schedule trigger").click()
    form = page.locator("form[action='/ui/apps/shop/triggers/schedule']")
    await form.get_by_label("Handler script").select_option(label="tick")
    await form.get_by_label("Cron").fill("* * * * * */2")
    await form.get_by_role("button", name="Add schedule trigger").click()
    await expect(page.get_by_role("status")).to_have_text("Trigger added.")
    fast = page.locator("#triggers tr[data-kind='schedule']", has_text="*/2")

    async def fired() -> bool:
        await page.reload()
        return await fast.locator(".last-fired").inner_text() != "not yet"

    await eventually(fired)
    await expect(fast.locator(".last-fired")).to_have_text(WHEN)
    await alice.goto("/ui/apps/shop/executions")
    runs = page.locator("#runs tbody tr")
    await page.get_by_label("Trigger starts with").fill("trigger:schedule:")
    await page.get_by_role("button", name="Filter").click()
    await expect(runs.first).to_be_visible()
    labels = page.locator("#runs tbody td:nth-child(3) code")
    for label in await labels.all_inner_texts():
        assert label.startswith("trigger:schedule:"), label
    await expect(page.get_by_label("Trigger starts with")).to_have_value(
        "trigger:schedule:"
    )
    await alice.shot("executions-schedule")
    await page.get_by_label("Trigger starts with").fill("route:")
    await page.get_by_role("button", name="Filter").click()
    await expect(runs).to_have_count(1)
    await expect(runs).to_contain_text("route:GET /hi")
    await page.get_by_label("Trigger starts with").fill("trigger:schedule:")
    await page.get_by_role("button", name="Filter").click()
    await runs.first.get_by_role("link").click()
    await expect(page.locator("#attempt")).to_have_text("1")
    await expect(page.locator(".facts")).to_contain_text("trigger:schedule:")
    await alice.shot("execution-attempt")
    await alice.goto("/ui/apps/shop")
    await fast.get_by_role("button", name="Remove").click()
    await expect(page.get_by_role("status")).to_have_text("Trigger removed.")
    await expect(page.locator("#triggers tr[data-kind='schedule']")).to_have_count(1)
