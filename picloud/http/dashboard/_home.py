"""The front page (first run, sign-in, or the apps list), signing in and out,
and creating an app."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from picloud.domain.access import Capability, capabilities
from picloud.errors import Forbidden, PiCloudError, TooManyRequests, Unauthenticated
from picloud.http._admin_apps import CreateAppBody, app_summaries, create_app
from picloud.http._api import ENDPOINTS, convert_body
from picloud.http._auth import AUTH, CSRF_FIELD, principal_of
from picloud.http._auth_api import end_session, set_session_cookies, sign_in
from picloud.http._errors import status_of
from picloud.http.dashboard._render import error_page, problem, render
from picloud.http.dashboard._security import (
    LOGIN_COOKIE,
    LOGIN_PATH,
    check_login_token,
    new_login_token,
    set_login_cookie,
)
from picloud.http.dashboard._table import ACTIONS, Form, action, auth_entry, page
from picloud.http.state import SERVICES

__all__ = ["add_session_routes"]

# What the front page and signing out check: a signed-in caller (and, for the
# POST of signing out, the session's CSRF token).
_SIGNED_IN = auth_entry("GET", "/", needs=Capability.SIGNED_IN)


@page("/", name="ui_home", needs=None)
async def home(request: web.Request) -> tuple[str, dict[str, Any]] | web.Response:
    try:
        await request.app[AUTH].authorize(request, _SIGNED_IN)
    except Unauthenticated:
        return await _signed_out(request)
    outside = capabilities(principal_of(request), app_id=None)
    return "apps.html", {
        "apps": await app_summaries(request),
        "may_create": ACTIONS["ui_create_app"].needs in outside,
    }


async def _signed_out(
    request: web.Request,
    *,
    error: PiCloudError | None = None,
    username: str = "",
) -> web.Response:
    """The sign-in form, or the first-run page while there is no admin."""
    if not await request.app[SERVICES].store.admin_exists():
        return await render(request, "first_run.html", {})
    token = new_login_token()
    context = {
        "login_token": token,
        "username": username,
        "error": None if error is None else problem(error),
    }
    # A wrong password is shown with the form (200, see _table); throttling
    # keeps its 429 and Retry-After.
    if not isinstance(error, TooManyRequests):
        response = await render(request, "sign_in.html", context)
    else:
        response = await render(request, "sign_in.html", context, status=429)
        response.headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    set_login_cookie(request, response, token)
    return response


async def sign_in_form(request: web.Request) -> web.StreamResponse:
    """POST /ui/login: the form's token, then the API's own sign-in."""
    form = await request.post()
    username = str(form.get("username", ""))[:200]
    try:
        check_login_token(request, str(form.get(CSRF_FIELD, "")))
        info, token = await sign_in(request, username, str(form.get("password", "")))
    except PiCloudError as e:
        if isinstance(e, Forbidden) or status_of(e) >= 500:  # a forged form: refused
            return await error_page(request, e)
        return await _signed_out(request, error=e, username=username)
    response = web.Response(status=303, headers={"Location": "/"})
    set_session_cookies(request, response, token, info.csrf_token)
    response.del_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
    return response


async def sign_out_form(request: web.Request) -> web.StreamResponse:
    """POST /ui/logout: checked like any cookie-signed POST, then ended."""
    response = web.Response(status=303, headers={"Location": "/"})
    try:
        await request.app[AUTH].authorize(request, _SIGNED_IN)
    except Unauthenticated:
        return response  # already signed out
    except PiCloudError as e:
        return await error_page(request, e)
    await end_session(request, response)
    return response


def add_session_routes(app: web.Application) -> None:
    app.router.add_post(LOGIN_PATH, sign_in_form, name="ui_login")
    app.router.add_post("/ui/logout", sign_out_form, name="ui_logout")


@action("/ui/apps", name="ui_create_app", api=ENDPOINTS.of(create_app), back=home)
async def create_app_form(request: web.Request, form: Form) -> str:
    body = convert_body(
        {"slug": form.get("slug", ""), "name": form.get("name", "")}, CreateAppBody
    )
    made = await create_app(request, body)
    return f"/ui/apps/{made.slug}?done=app_created"
