"""Dashboard sessions over HTTP: cookies, CSRF, logout, failed logins, throttling."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from picloud.server import Server
from tests.http.helpers import Api, Identity, create_identity, login

pytestmark = [pytest.mark.ray, pytest.mark.server]


@pytest.fixture
async def ann(server: Server) -> Identity:
    return await create_identity(server, "ann", scopes=None)


async def test_login_sets_a_locked_down_session_cookie_and_answers_a_csrf_token(
    server: Server, ann: Identity, anon: Api
) -> None:
    signed_in = await login(server.url, "ANN", ann.password)
    assert signed_in.status == 200
    assert signed_in.body["user"]["username"] == "ann"
    assert set(signed_in.body) == {"user", "csrf_token", "expires_at"}
    session = signed_in.cookies["picloud_session"]
    assert session["httponly"] is True
    assert session["samesite"] == "Strict"
    assert session["path"] == "/"
    assert not session["secure"]  # plain HTTP to a loopback address
    csrf = signed_in.cookies["picloud_csrf"]
    assert csrf.value == signed_in.body["csrf_token"]
    assert not csrf["httponly"]  # the dashboard's script reads it
    behind_tls = await login(
        server.url, "ann", ann.password, headers={"X-Forwarded-Proto": "https"}
    )
    assert behind_tls.cookies["picloud_session"]["secure"] is True

    status, me = await anon.call("GET", "/api/v1/auth/me", headers=signed_in.headers)
    assert status == 200
    assert (me["via"], me["user"]["id"], me["key"]) == ("session", ann.user_id, None)


async def test_unsafe_requests_by_cookie_need_the_csrf_token_bearer_ones_do_not(
    server: Server, ann: Identity, anon: Api, api: Api
) -> None:
    signed_in = await login(server.url, "ann", ann.password)
    cookie_only = {"Cookie": signed_in.headers["Cookie"]}
    body = {"slug": "mine", "name": "Mine"}
    for headers in (cookie_only, {**cookie_only, "X-CSRF-Token": "0" * 64}):
        status, answer = await anon.call(
            "POST", "/api/v1/admin/apps", body, headers=headers
        )
        assert status == 403
        assert answer["error"]["code"] == "csrf_failed"
    status, _ = await anon.call("GET", "/api/v1/admin/apps", headers=cookie_only)
    assert status == 200  # safe methods need no token
    status, app = await anon.call(
        "POST", "/api/v1/admin/apps", body, headers=signed_in.headers
    )
    assert status == 201
    status, members = await api.call("GET", f"/api/v1/admin/apps/{app['id']}/members")
    assert [(m["username"], m["role"]) for m in members["items"]] == [("ann", "owner")]


async def test_login_takes_only_json_so_a_cross_site_form_cannot_sign_anyone_in(
    ann: Identity, anon: Api
) -> None:
    form = f'{{"username": "ann", "password": "{ann.password}"}}'.encode()
    status, answer = await anon.call(
        "POST", "/api/v1/auth/login", raw=form, headers={"Content-Type": "text/plain"}
    )
    assert (status, answer["error"]["code"]) == (400, "invalid_input")


async def test_logout_ends_the_session(
    server: Server, ann: Identity, anon: Api
) -> None:
    signed_in = await login(server.url, "ann", ann.password)
    status, _ = await anon.call(
        "POST", "/api/v1/auth/logout", headers=signed_in.headers
    )
    assert status == 204
    status, answer = await anon.call(
        "GET", "/api/v1/auth/me", headers=signed_in.headers
    )
    assert status == 401
    assert answer["error"]["code"] == "unauthenticated"


async def test_changing_the_password_ends_every_other_session(
    server: Server, ann: Identity, anon: Api
) -> None:
    first = await login(server.url, "ann", ann.password)
    second = await login(server.url, "ann", ann.password)
    status, fresh = await anon.call(
        "PUT",
        "/api/v1/auth/password",
        {"current_password": ann.password, "new_password": "a whole new phrase"},
        headers=first.headers,
    )
    assert status == 200
    for old in (first, second):
        status, _ = await anon.call("GET", "/api/v1/auth/me", headers=old.headers)
        assert status == 401
    assert (await login(server.url, "ann", ann.password)).status == 401
    assert (await login(server.url, "ann", "a whole new phrase")).status == 200
    assert fresh["user"]["id"] == ann.user_id


async def test_a_failed_login_says_the_same_and_takes_as_long_with_or_without_a_user(
    server: Server, ann: Identity
) -> None:
    timings: dict[str, list[float]] = {"ann": [], "nobody": []}
    answers = set()
    for _ in range(3):
        for name, spent in timings.items():
            started = time.perf_counter()
            failed = await login(server.url, name, "not the password")
            spent.append(time.perf_counter() - started)
            assert failed.status == 401
            answers.add(str(failed.body))
    assert len(answers) == 1  # one message for both
    known, unknown = (statistics.median(timings[n]) for n in ("ann", "nobody"))
    # Both verify one argon2 hash (tens of ms); a skipped check would be ~1 ms.
    assert 0.5 < unknown / known < 2.0, timings


@pytest.mark.timeout(180)
async def test_repeated_failures_are_slowed_down_for_known_and_unknown_users(
    server: Server, ann: Identity
) -> None:
    assert server.settings.login_max_failures == 5
    for name, password in (("ann", ann.password), ("nobody", "whatever-it-is")):
        for _ in range(6):  # five free attempts, the sixth blocks the next
            assert (await login(server.url, name, "wrong guess")).status == 401
        blocked = await login(server.url, name, password)
        assert blocked.status == 429
        assert blocked.body["error"]["code"] == "too_many_requests"
        assert blocked.retry_after is not None
        assert int(blocked.retry_after) >= 1
        await asyncio.sleep(int(blocked.retry_after) + 0.2)
        if name == "ann":
            assert (await login(server.url, name, password)).status == 200
        else:
            assert (await login(server.url, name, password)).status == 401
