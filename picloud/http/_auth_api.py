"""Signing in and out, and one's own account: ``/api/v1/auth/…``.

Guarantees:
- A failed login answers 401 ``unauthenticated`` with one message, after one
  argon2 verification, whether or not the user exists (a dummy hash stands in
  for a missing user), so neither the answer nor its timing tells them apart.
- Attempts are throttled per username and per client address across every
  front-door process (:mod:`picloud.store._throttle`): a blocked attempt is a
  429 ``too_many_requests`` with ``Retry-After``, and checks no password.
- The session cookie is HttpOnly, SameSite=Lax and Secure (except over plain
  HTTP to a loopback address, where browsers would drop a Secure cookie); the
  CSRF token comes in the login answer and a readable cookie.
- An API key's secret appears exactly once: in the answer that creates it.
  Passwords and secrets are never logged, recorded or echoed.
- Keys cannot manage keys or passwords (ACCOUNT is a signed-in person's).
"""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web

from picloud.domain.access import Capability
from picloud.domain.credentials import (
    MAX_PASSWORD_LEN,
    csrf_token_for,
    dummy_hash,
    hash_password,
    hash_token,
    new_api_key,
    new_session_token,
    verify_password,
)
from picloud.domain.identity import CreateApiKey, RevokeApiKey, UpdateUser
from picloud.domain.records import KeyRecord, UserRecord
from picloud.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthenticated,
)
from picloud.http._api import endpoint, json_response
from picloud.http._auth import CSRF_COOKIE, SESSION_COOKIE, principal_of
from picloud.http.state import SERVICES, command_meta

__all__ = [
    "CreateKeyBody",
    "CreatedKey",
    "KeyList",
    "LoginBody",
    "SessionInfo",
    "WhoAmI",
    "end_session",
    "needs_secure_cookie",
    "set_session_cookies",
    "sign_in",
]

Password = Annotated[str, msgspec.Meta(max_length=MAX_PASSWORD_LEN)]
_ADDRESS_ALLOWANCE = 4  # an address may fail this many times more than one user


class LoginBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(max_length=200)]
    password: Password

    def __repr__(self) -> str:  # keep the password out of any traceback or log
        return f"LoginBody(username={self.username!r})"


class SessionInfo(msgspec.Struct, frozen=True, kw_only=True):
    user: UserRecord
    csrf_token: str
    """Send it as ``X-CSRF-Token`` with every unsafe request signed in by cookie."""
    expires_at: datetime


class KeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    scopes: list[str]
    app_id: str | None


class WhoAmI(msgspec.Struct, frozen=True, kw_only=True):
    user: UserRecord
    via: str
    """``session`` or ``key``."""
    key: KeyInfo | None = None


class PasswordBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    current_password: Password
    new_password: Password

    def __repr__(self) -> str:
        return "PasswordBody(…)"


class CreateKeyBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    scopes: list[str]
    app: str | None = None
    """Bind the key to this app (id or slug); it can then do nothing elsewhere."""


class CreatedKey(KeyRecord, frozen=True, kw_only=True):
    key: str
    """The secret: shown this once, never again."""


class KeyList(msgspec.Struct, frozen=True):
    items: list[KeyRecord]


# -- sessions -----------------------------------------------------------------------


@endpoint(
    "POST",
    "/api/v1/auth/login",
    needs=None,
    summary="Sign in: sets the session cookie, answers the CSRF token",
    answer=SessionInfo,
    tag="auth",
)
async def login(request: web.Request, body: LoginBody) -> web.Response:
    if request.content_type != "application/json":
        # A cross-site form can post text/plain that parses as JSON; it cannot
        # send application/json without a CORS preflight (login CSRF).
        raise InvalidInput("sign in with a JSON body (Content-Type: application/json)")
    info, token = await sign_in(request, body.username, body.password)
    response = json_response(info)
    set_session_cookies(request, response, token, info.csrf_token)
    return response


async def sign_in(
    request: web.Request, username: str, password: str
) -> tuple[SessionInfo, str]:
    """Check the password (throttled) and start a session: what the login
    answers, and the session's secret token for its cookie."""
    user_id = await _check_password(request, username.lower(), password)
    user = await request.app[SERVICES].store.user(user_id)
    if user is None:  # deleted in the meantime
        raise Unauthenticated("wrong username or password")
    return await _new_session(request, user)


async def _check_password(request: web.Request, name: str, password: str) -> str:
    """The user's id if ``password`` is theirs; throttled; timing-uniform."""
    services = request.app[SERVICES]
    settings = services.settings
    user_subject = f"user:{name}"
    addr_subject = f"addr:{request.remote or 'unknown'}"
    wait = await services.store.take_login_attempt(
        [
            (user_subject, settings.login_max_failures),
            (addr_subject, settings.login_max_failures * _ADDRESS_ALLOWANCE),
        ],
        window_s=settings.login_throttle_window_s,
    )
    if wait > 0:
        raise TooManyRequests(
            f"too many sign-in attempts; try again in {wait:.0f}s", retry_after=wait
        )
    found = await services.store.login_user(name)
    encoded = found.password_hash if found is not None else dummy_hash()
    matches = await asyncio.to_thread(verify_password, encoded, password)
    if found is None or not matches:
        raise Unauthenticated("wrong username or password")
    await services.store.forgive_login(user=user_subject, addr=addr_subject)
    return found.id


async def _start_session(request: web.Request, user: UserRecord) -> web.Response:
    info, token = await _new_session(request, user)
    response = json_response(info)
    set_session_cookies(request, response, token, info.csrf_token)
    return response


async def _new_session(
    request: web.Request, user: UserRecord
) -> tuple[SessionInfo, str]:
    """A new session of ``user``: what the login answers, and its secret token."""
    services = request.app[SERVICES]
    token = new_session_token()
    expires_at = await services.store.create_session(
        token_hash=hash_token(token),
        user_id=user.id,
        ttl_s=services.settings.session_ttl_s,
    )
    info = SessionInfo(
        user=user, csrf_token=csrf_token_for(token), expires_at=expires_at
    )
    return info, token


def set_session_cookies(
    request: web.Request, response: web.StreamResponse, token: str, csrf: str
) -> None:
    """The session cookie (HttpOnly) and the CSRF cookie (readable by scripts)."""
    ttl = request.app[SERVICES].settings.session_ttl_s
    secure = needs_secure_cookie(request)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ttl,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=ttl, path="/", samesite="Strict", secure=secure
    )


def needs_secure_cookie(request: web.Request) -> bool:
    if request.secure or request.headers.get("X-Forwarded-Proto") == "https":
        return True
    host = (request.url.host or "").strip("[]")
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


@endpoint(
    "POST",
    "/api/v1/auth/logout",
    needs=None,
    summary="Sign out: ends the session and clears its cookies",
    status=204,
    tag="auth",
)
async def logout(request: web.Request) -> web.Response:
    response = web.Response(status=204)
    await end_session(request, response)
    return response


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    """End the request's session (if any) and clear its cookies in ``response``."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await request.app[SERVICES].store.delete_session(hash_token(token))
    response.del_cookie(SESSION_COOKIE, path="/")
    response.del_cookie(CSRF_COOKIE, path="/")


@endpoint(
    "GET",
    "/api/v1/auth/me",
    needs=Capability.SIGNED_IN,
    summary="Who the credentials belong to, and a key's scopes",
    answer=WhoAmI,
    tag="auth",
)
async def whoami(request: web.Request) -> WhoAmI:
    principal = principal_of(request)
    user = await request.app[SERVICES].store.user(principal.user_id)
    if user is None:
        raise Unauthenticated("the user no longer exists")
    key = principal.key
    if key is None:
        return WhoAmI(user=user, via="session")
    info = KeyInfo(id=key.id, scopes=sorted(key.scopes), app_id=key.app_id)
    return WhoAmI(user=user, via="key", key=info)


@endpoint(
    "PUT",
    "/api/v1/auth/password",
    needs=Capability.ACCOUNT,
    summary="Change one's password; ends every session and starts a new one",
    answer=SessionInfo,
    tag="auth",
)
async def change_password(request: web.Request, body: PasswordBody) -> web.Response:
    principal = principal_of(request)
    user_id = await _check_password(request, principal.username, body.current_password)
    new_hash = await asyncio.to_thread(hash_password, body.new_password)
    user = await request.app[SERVICES].control.execute_as(
        UserRecord,
        UpdateUser(user=user_id, password_hash=new_hash),
        command_meta(request),
    )
    return await _start_session(request, user)


# -- one's own API keys -------------------------------------------------------------


@endpoint(
    "GET",
    "/api/v1/auth/keys",
    needs=Capability.ACCOUNT,
    summary="List one's API keys (never their secrets)",
    answer=KeyList,
    tag="auth",
)
async def list_own_keys(request: web.Request) -> KeyList:
    principal = principal_of(request)
    return KeyList(items=await request.app[SERVICES].store.keys(principal.user_id))


@endpoint(
    "POST",
    "/api/v1/auth/keys",
    needs=Capability.ACCOUNT,
    summary="Create an API key with scopes, optionally bound to one app",
    answer=CreatedKey,
    status=201,
    tag="auth",
)
async def create_own_key(request: web.Request, body: CreateKeyBody) -> CreatedKey:
    principal = principal_of(request)
    made = new_api_key()
    command = CreateApiKey(
        user=principal.user_id,
        name=body.name,
        prefix=made.prefix,
        secret_hash=made.hash,
        scopes=tuple(body.scopes),
        app=body.app,
    )
    record = await request.app[SERVICES].control.execute_as(
        KeyRecord, command, command_meta(request)
    )
    if record.prefix != made.prefix:
        # A repeated Idempotency-Key answers the first key, whose secret is gone.
        raise Conflict(
            f"this Idempotency-Key already created key {record.id}; its secret "
            "was shown once and cannot be shown again"
        )
    return CreatedKey(**msgspec.structs.asdict(record), key=made.secret)


@endpoint(
    "DELETE",
    "/api/v1/auth/keys/{id}",
    needs=Capability.ACCOUNT,
    summary="Revoke one of one's API keys; it stops working at once",
    status=204,
    tag="auth",
)
async def revoke_own_key(request: web.Request) -> None:
    principal = principal_of(request)
    key_id = request.match_info["id"]
    if len(key_id) > 100:
        raise NotFound("no such API key")
    command = RevokeApiKey(key=key_id, user=principal.user_id)
    await request.app[SERVICES].control.execute(command, command_meta(request))
