"""A person at a real Chromium: pages visited, what each answer carried,
screenshots at desktop and phone widths, and every console error.

Chromium is Debian's (``/usr/bin/chromium``, installed by
``scripts/test-deps.sh``); Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Response,
    ViewportSize,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Settings of the tests' servers: a failing trigger dead-letters in a second.
FAST_RETRIES = {
    "trigger_retry_base_ms": 100,
    "trigger_retry_max_ms": 200,
    "trigger_retry_jitter": 0.0,
    "trigger_retry_max_attempts": 2,
    "delivery_wake_interval_ms": 200,
}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 375, "height": 812}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

# The innermost elements that reach past the screen's right edge (to name them
# when a page scrolls sideways on a phone).
_OVERFLOWING = """() => [...document.querySelectorAll("body *")]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
  .filter((e) => ![...e.children].some(
    (c) => c.getBoundingClientRect().right > window.innerWidth + 1))
  .slice(0, 5)
  .map((e) => e.tagName.toLowerCase() + (e.className ? "." + e.className : ""))"""

# Controls a keyboard or a screen reader could not use: a field without a
# label, a button or link without a name, anything taken out of the tab order,
# and anything clickable that is not a real control.
_UNUSABLE = """() => {
  const named = (e) => (e.textContent || "").trim() || e.getAttribute("aria-label");
  const fields = [...document.querySelectorAll(
    "input:not([type=hidden]), select, textarea")]
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label"));
  const controls = [...document.querySelectorAll("button, a[href], summary")]
    .filter((e) => !named(e) || e.tabIndex < 0);
  const fake = [...document.querySelectorAll("[onclick], [role=button], [tabindex]")];
  return [...fields, ...controls, ...fake].map((e) => e.outerHTML.slice(0, 120));
}"""


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 20.0, every: float = 0.2
) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(every)


@dataclass
class Person:
    """One browser context (a person's cookies) and its one tab."""

    context: BrowserContext
    page: Page
    base: str
    shots: Path
    who: str
    console_errors: list[str] = field(default_factory=list)
    documents: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)
    visited: list[tuple[str, str]] = field(default_factory=list)
    """(screenshot name, path) of every page shot."""
    too_wide: list[str] = field(default_factory=list)
    """Pages wider than a 375 px screen."""
    unusable: list[str] = field(default_factory=list)
    """Controls without a label or name, or out of the keyboard's reach."""

    @classmethod
    async def arrive(cls, browser: Browser, base: str, shots: Path, who: str) -> Person:
        context = await browser.new_context(viewport=DESKTOP, base_url=base)
        page = await context.new_page()
        person = cls(context, page, base, shots, who)
        person.watch(page)
        return person

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))
        page.on("response", self._response)
        page.on("dialog", self._dialog)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} at {message.location}")

    def _response(self, response: Response) -> None:
        if response.request.resource_type == "document":
            self.documents.append((response.url, response.status, response.headers))

    async def _dialog(self, dialog: Dialog) -> None:
        await dialog.accept()  # the confirm() before a delete or a revoke

    async def goto(self, path: str) -> Response:
        response = await self.page.goto(self.base + path)
        assert response is not None
        return response

    async def shot(self, name: str) -> None:
        """Full-page screenshots of what is on screen now, at desktop width and
        at 375 px (noting a page that would scroll sideways there, and any
        control a keyboard could not reach or a screen reader not name)."""
        n = len(self.visited) + 1
        stem = self.shots / f"{self.who}-{n:02d}-{name}"
        for control in await self.page.evaluate(_UNUSABLE):
            self.unusable.append(f"{name}: {control}")
        await self.page.screenshot(path=f"{stem}.png", full_page=True)
        await self.page.set_viewport_size(PHONE)
        try:
            width = await self.page.evaluate("document.documentElement.scrollWidth")
            if width > PHONE["width"]:
                culprits = await self.page.evaluate(_OVERFLOWING)
                self.too_wide.append(f"{name} ({self.path()}): {width}px {culprits}")
            await self.page.screenshot(path=f"{stem}-375px.png", full_page=True)
        finally:
            await self.page.set_viewport_size(DESKTOP)
        self.visited.append((name, self.path()))

    async def tab_to(self, text: str, *, within: str = "body") -> None:
        """Press Tab until the focused control inside ``within`` reads ``text``
        (so it is reachable by keyboard alone); fail after 80 presses."""
        for _ in range(80):
            await self.page.keyboard.press("Tab")
            focused = await self.page.evaluate(
                "(within) => { const e = document.activeElement;"
                " return e && e.closest(within) ? e.textContent.trim() : null; }",
                within,
            )
            if focused == text:
                return
        raise AssertionError(f"Tab never reached {text!r} in {within}")

    def path(self) -> str:
        return self.page.url.removeprefix(self.base)

    def check(self) -> None:
        """Every page the browser loaded came with the dashboard's headers, fit
        a phone's screen, and logged no error to the console."""
        assert not self.too_wide, f"wider than 375px: {self.too_wide}"
        assert not self.unusable, f"not usable by keyboard: {self.unusable}"
        assert not self.console_errors, self.console_errors
        assert self.documents
        for url, status, headers in self.documents:
            assert headers.get("content-security-policy") == CSP, (url, status)
            assert headers.get("x-frame-options") == "DENY", url
            assert headers.get("referrer-policy") == "no-referrer", url
            assert headers.get("x-content-type-options") == "nosniff", url

    async def leave(self) -> None:
        await self.context.close()


async def sign_in(page: Page, username: str, password: str) -> None:
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
