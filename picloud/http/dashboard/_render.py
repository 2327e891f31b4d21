"""Rendering the dashboard's templates: the context every page has, and errors."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from picloud.domain.access import Principal
from picloud.domain.credentials import csrf_token_for
from picloud.errors import PiCloudError, TooManyRequests, Unauthenticated
from picloud.http._auth import SESSION_COOKIE, principal_of
from picloud.http._errors import RETRY_AFTER_S, status_of

__all__ = ["NOTICES", "Problem", "error_page", "problem", "render"]

# What a redirect after a successful action says (?done=…): a fixed table, so
# no text of a URL is ever shown as a message.
NOTICES = {
    "app_created": "App created.",
    "script_saved": "Script saved.",
    "script_deleted": "Script deleted.",
    "route_added": "Route added.",
    "route_removed": "Route removed.",
    "trigger_added": "Trigger added.",
    "trigger_removed": "Trigger removed.",
    "replayed": "Dead letter replayed: its event is delivered again.",
    "resolved": "Dead letter marked resolved.",
    "bulk_replayed": "Replayed {n} open dead letters.",
    "member_set": "Member's role set.",
    "member_removed": "Member removed.",
    "key_revoked": "API key revoked.",
    "secret_set": "Secret set.",
    "secret_deleted": "Secret deleted.",
    "cors_set": "CORS policy saved.",
    "cors_removed": "CORS policy removed: no cross-origin calls.",
    "fetch_set": "Fetch allowlist saved.",
    "fetch_removed": "The app's fetch allowlist removed: the deployment's applies.",
}

_LINE = re.compile(r"^[A-Za-z_][\w.]*:(\d+): ")


@dataclass(frozen=True)
class Problem:
    """A refused action as a form shows it; ``line`` is the source line it names."""

    status: int
    code: str
    message: str
    line: int = 0


def problem(error: PiCloudError) -> Problem:
    # Validation messages read "name:LINE: reason" (picloud.scripting.validate).
    found = _LINE.match(error.message)
    line = int(found.group(1)) if found else 0
    return Problem(status_of(error), error.code, error.message, line)


def _principal(request: web.Request) -> Principal | None:
    try:
        return principal_of(request)
    except Unauthenticated:
        return None


def base_context(request: web.Request) -> dict[str, Any]:
    """Who is signed in, their form token, and the notice of the last action."""
    me = _principal(request)
    token = request.cookies.get(SESSION_COOKIE)
    csrf = csrf_token_for(token) if me is not None and token else ""
    notice = NOTICES.get(request.query.get("done", ""))
    count = request.query.get("n", "")
    if notice is not None and "{n}" in notice:
        notice = notice.format(n=int(count) if count.isdigit() else "the")
    return {"me": me, "csrf": csrf, "notice": notice, "error": None, "form": {}}


async def render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    values = {**base_context(request), **context}
    return aiohttp_jinja2.render_template(template, request, values, status=status)


async def error_page(request: web.Request, error: PiCloudError) -> web.Response:
    """The page of a refused request, with the API's status, code and message."""
    context = {"problem": problem(error)}
    status = status_of(error)
    response = await render(request, "error.html", context, status=status)
    if isinstance(error, TooManyRequests):  # as the API answers (picloud.http._errors)
        response.headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    elif status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response
