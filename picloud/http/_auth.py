"""Who is calling, and may they: authentication and the capability check.

Every endpoint of :data:`~picloud.http._api.ENDPOINTS` passes through
:meth:`Auth.authorize` before its body is even read:

- ``needs=None``: public, nothing is checked;
- no credentials: 401 ``unauthenticated``; a malformed, unknown or revoked
  key, or an ended session: 401 as well;
- an app-scoped endpoint whose app the caller holds nothing on (no role, a
  key bound elsewhere) or that does not exist: 404 ``not_found``, the same
  answer either way, so neither apps nor their things can be probed;
- credentials without the capability (on the app the request acts on): 403.

Credentials are ``Authorization: Bearer <api key>`` (no CSRF check: a browser
never adds it by itself) or the dashboard's session cookie; an unsafe request
(not GET/HEAD/OPTIONS) authenticated by the cookie must also carry the
session's CSRF token in the ``X-CSRF-Token`` header (or a ``csrf_token``
field of a form post), else 403 ``csrf_failed``.

Every check reads the projections (no cache), so a revoked key, a removed
membership or a deleted user is refused by the very next request, in every
front-door process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from picloud.domain.access import Capability, Principal, capabilities
from picloud.domain.credentials import (
    csrf_token_for,
    dummy_hash,
    hash_key,
    hash_token,
    looks_like_key,
    same_secret,
)
from picloud.domain.records import AppRecord
from picloud.errors import Forbidden, NotFound, Unauthenticated
from picloud.http._api import Authorize, Endpoint, not_found
from picloud.http._input import bounded_read
from picloud.http.state import ACTOR, SERVICES

__all__ = [
    "AUTH",
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "Auth",
    "holds",
    "install_auth",
    "principal_of",
    "readable_apps",
]

SESSION_COOKIE = "picloud_session"
CSRF_COOKIE = "picloud_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORMS = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_MISSING_APP = "\0missing"  # matches no app id, membership or key binding
_PRINCIPAL = web.RequestKey("principal", Principal)
_HELD = web.RequestKey("held", frozenset)


class Auth:
    """The authorize hook of the endpoint table, with its per-process memo."""

    async def authorize(self, request: web.Request, endpoint: Endpoint) -> None:
        """Raise Unauthenticated (401), NotFound (404) or Forbidden (403), or
        return to proceed."""
        if endpoint.needs is None:
            return
        principal = await self.authenticate(request)
        request[_PRINCIPAL] = principal
        request[ACTOR] = principal.actor
        if endpoint.app_scoped:
            held = await _held_on_app(request, endpoint, principal)
        else:
            held = capabilities(principal, app_id=None)
        if endpoint.needs not in held:
            where = " on this app" if endpoint.app_scoped else ""
            raise Forbidden(f"not allowed: this needs {endpoint.needs.value}{where}")
        request[_HELD] = held

    async def authenticate(self, request: web.Request) -> Principal:
        """The caller, from a bearer key or the session cookie; else 401."""
        header = request.headers.get("Authorization")
        if header is not None:
            return await self._from_key(request, header)
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            principal = await request.app[SERVICES].store.principal_for_session(
                hash_token(token)
            )
            if principal is None:
                raise Unauthenticated("the session has ended; sign in again")
            if request.method not in _SAFE_METHODS:
                await _check_csrf(request, token)
            return principal
        raise Unauthenticated("sign in, or send Authorization: Bearer <api key>")

    async def _from_key(self, request: web.Request, header: str) -> Principal:
        scheme, _, secret = header.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not looks_like_key(secret):
            raise Unauthenticated("the Authorization header is not a PiCloud API key")
        store = request.app[SERVICES].store
        principal = await store.principal_for_key(hash_key(secret))
        if principal is None or principal.key is None:
            raise Unauthenticated("unknown or revoked API key")
        await store.key_used(principal.key.id)
        return principal


async def _held_on_app(
    request: web.Request, endpoint: Endpoint, principal: Principal
) -> frozenset[Capability]:
    """What the caller holds on the app the request acts on; NotFound if
    nothing (the app is invisible to them, or absent: they cannot tell)."""
    app_of = endpoint.app_of
    in_query = () if app_of is None else app_of.in_query
    if in_query and not any(request.query.get(name) for name in in_query):
        return capabilities(principal, app_id=None)
    app_id, missing = await _app_of(request, endpoint)
    role = None
    if app_id != _MISSING_APP and not principal.is_admin:
        role = await request.app[SERVICES].store.role_in(app_id, principal.user_id)
    held = capabilities(principal, app_id=app_id, role=role)
    if not held:
        raise missing
    return held


async def _app_of(request: web.Request, endpoint: Endpoint) -> tuple[str, NotFound]:
    """The id of the app the request acts on (or a marker that matches none),
    and the 404 of a caller who may not see it: the handler's own 404."""
    if endpoint.app_of is not None:
        found = await endpoint.app_of.find(request)
        names = endpoint.app_of.in_query
        ref = (
            next(request.query[n] for n in names if request.query.get(n))
            if names
            else request.match_info[endpoint.app_of.param]
        )
        missing = not_found(endpoint.app_of.noun, ref)
    else:
        ref = request.match_info["app"]
        app = await request.app[SERVICES].store.app(ref)
        found = None if app is None else app.id
        missing = not_found("app", ref)
    return (_MISSING_APP if found is None else found), missing


async def _check_csrf(request: web.Request, session_token: str) -> None:
    expected = csrf_token_for(session_token)
    given = request.headers.get(CSRF_HEADER, "")
    if not given and request.content_type in _FORMS:
        form = await bounded_read(request, request.post())
        field = form.get(CSRF_FIELD)
        given = field if isinstance(field, str) else ""
    if not given or not same_secret(given, expected):
        raise Forbidden(
            f"a request signed in by cookie must send the {CSRF_HEADER} header "
            "(the csrf_token of the login answer)",
            code="csrf_failed",
        )


def holds(request: web.Request, needed: Capability) -> bool:
    """Whether the caller holds ``needed`` where the request acts (for an
    endpoint whose action may need more than its ``needs``)."""
    held: frozenset[Capability] = request.get(_HELD, frozenset())
    return needed in held


def principal_of(request: web.Request) -> Principal:
    """The principal :meth:`Auth.authorize` found for this request."""
    if _PRINCIPAL not in request:
        raise Unauthenticated("sign in, or send Authorization: Bearer <api key>")
    return request[_PRINCIPAL]


async def readable_apps(request: web.Request) -> list[AppRecord]:
    """The apps the caller may read (APP_READ), by slug."""
    principal = principal_of(request)
    rows = await request.app[SERVICES].store.apps_with_roles(principal.user_id)
    return [
        app
        for app, role in rows
        if Capability.APP_READ in capabilities(principal, app_id=app.id, role=role)
    ]


AUTH = web.AppKey("auth", Auth)


def install_auth(app: web.Application) -> Authorize:
    """Give ``app`` its :class:`Auth`; return the hook for ``ENDPOINTS.routes``.

    Also computes the dummy password hash at start-up, so the first failed
    login for an unknown user takes no longer than any other.
    """
    auth = Auth()
    app[AUTH] = auth

    async def warm(_: web.Application) -> None:
        await asyncio.to_thread(dummy_hash)

    app.on_startup.append(warm)
    hook: Callable[[web.Request, Endpoint], Awaitable[None]] = auth.authorize
    return hook
