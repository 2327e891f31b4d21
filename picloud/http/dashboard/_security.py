"""The headers that keep the dashboard to its own origin, and the sign-in
form's token.

Every answer of the admin listener carries a Content-Security-Policy that
allows nothing but this origin (no inline script or style at all, no frames,
forms posting only here), X-Frame-Options DENY, no Referer and nosniff; the
dashboard's pages are not cached.

The sign-in form cannot use a session's CSRF token (there is no session
yet), so it carries a random token also set in a SameSite=Strict, HttpOnly
cookie; the POST must bring both, equal (a cross-site form gets neither).
"""

from __future__ import annotations

import secrets

from aiohttp import web

from picloud.domain.credentials import same_secret
from picloud.errors import Forbidden
from picloud.http._auth import CSRF_FIELD
from picloud.http._auth_api import needs_secure_cookie

__all__ = [
    "CSP",
    "LOGIN_COOKIE",
    "LOGIN_PATH",
    "STATIC_PREFIX",
    "check_login_token",
    "new_login_token",
    "secure_headers",
    "set_login_cookie",
]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
STATIC_PREFIX = "/ui/static/"
LOGIN_COOKIE = "picloud_login"
LOGIN_PATH = "/ui/login"


async def secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` of the admin listener."""
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if _is_page(request.path):
        headers["Cache-Control"] = "no-store"


def _is_page(path: str) -> bool:
    return path == "/" or (
        path.startswith("/ui/") and not path.startswith(STATIC_PREFIX)
    )


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


def set_login_cookie(
    request: web.Request, response: web.StreamResponse, token: str
) -> None:
    """The sign-in form's token, for the POST of that form only."""
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        path=LOGIN_PATH,
        httponly=True,
        samesite="Strict",
        secure=needs_secure_cookie(request),
    )


def check_login_token(request: web.Request, form_value: str) -> None:
    """Raise Forbidden unless the form's token is the cookie's."""
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not form_value or not same_secret(cookie, form_value):
        raise Forbidden(
            f"the sign-in form's {CSRF_FIELD} does not match its cookie; "
            "reload the page and sign in again",
            code="csrf_failed",
        )
