"""Identity over HTTP: revocation, app-bound keys, secrets, members and users."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import pytest

from picloud.actors.control_plane import ControlPlane
from picloud.domain.identity import RevokeApiKey
from picloud.events import EventMeta
from picloud.server import Server
from picloud.store import CommitSignals, EventLog
from picloud.store._pool import create_pool
from tests.http.helpers import Api, Identity, create_identity, login

pytestmark = [pytest.mark.ray, pytest.mark.server]

APPS = "/api/v1/admin/apps"


async def signed_in(server: Server, anon: Api, who: Identity) -> Api:
    """A client using ``who``'s dashboard session (cookie and CSRF header)."""
    session = await login(server.url, who.username, who.password)
    assert session.status == 200
    return Api(anon.session, anon.base, session.headers)


async def new_key(client: Api, **body: Any) -> tuple[str, str]:
    status, made = await client.call("POST", "/api/v1/auth/keys", body)
    assert status == 201, made
    return made["id"], made["key"]


async def test_revoked_keys_stop_working_at_once(
    server: Server, anon: Api, admin: Identity, database: str
) -> None:
    boss = await signed_in(server, anon, admin)
    dave = await create_identity(server, "dave", scopes=None)
    dave_web = await signed_in(server, anon, dave)
    keys = []
    for _ in range(3):
        key_id, secret = await new_key(dave_web, name="ci", scopes=["app:read"])
        bearer = Api(anon.session, anon.base, {"Authorization": f"Bearer {secret}"})
        assert (await bearer.call("GET", APPS))[0] == 200
        keys.append((key_id, bearer))

    (own_id, own), (admin_id, by_admin), (cli_id, by_cli) = keys
    assert (await dave_web.call("DELETE", f"/api/v1/auth/keys/{own_id}"))[0] == 204
    assert (await boss.call("DELETE", f"/api/v1/admin/keys/{admin_id}"))[0] == 204
    # Another process writing the system stream, as `picloud admin` does.
    assert server.services is not None
    pool = await create_pool(database, server.settings, init_size=1, max_size=2)
    try:
        plane = ControlPlane(EventLog(pool, CommitSignals()))
        await plane.execute(RevokeApiKey(key=cli_id), EventMeta(actor="cli"))
    finally:
        await pool.close()
    for bearer in (own, by_admin, by_cli):
        status, answer = await bearer.call("GET", APPS)
        assert status == 401
        assert answer["error"]["code"] == "unauthenticated"

    status, listed = await dave_web.call("GET", "/api/v1/auth/keys")
    assert all(k["revoked_at"] for k in listed["items"])
    # Deleting the user ends their keys and sessions too.
    _, secret = await new_key(dave_web, name="last", scopes=["app:read"])
    assert (await boss.call("DELETE", "/api/v1/admin/users/dave"))[0] == 204
    assert (await dave_web.call("GET", "/api/v1/auth/me"))[0] == 401
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await anon.call("GET", APPS, headers=headers))[0] == 401


async def test_a_key_bound_to_app_a_can_do_nothing_to_app_b(
    server: Server, anon: Api
) -> None:
    erin = await create_identity(server, "erin", scopes=None)
    web = await signed_in(server, anon, erin)
    apps = {}
    for slug in ("app-a", "app-b"):
        status, apps[slug] = await web.call("POST", APPS, {"slug": slug, "name": slug})
        assert status == 201
    b = apps["app-b"]
    status, script_b = await web.call(
        "POST", f"{APPS}/app-b/scripts", {"name": "main", "source": "return {}"}
    )
    assert status == 201
    all_scopes = ["app:read", "app:write", "script:read", "script:write"]
    all_scopes += ["triggers:manage", "dead_letters:manage", "events:read"]
    _, secret = await new_key(web, name="a only", scopes=all_scopes, app="app-a")
    key = Api(anon.session, anon.base, {"Authorization": f"Bearer {secret}"})

    assert (await key.call("GET", f"{APPS}/app-a"))[0] == 200
    status, listed = await key.call("GET", APPS)
    assert [a["slug"] for a in listed["items"]] == ["app-a"]
    # On app-b the key holds nothing: app-b and its things are as absent (404);
    # outside apps it may only be signed in (403).
    attempts: list[tuple[str, str, Any, int]] = [
        ("GET", f"{APPS}/{b['id']}", None, 404),
        ("GET", f"{APPS}/app-b", None, 404),
        ("PATCH", f"{APPS}/app-b", {"name": "taken over"}, 404),
        ("DELETE", f"{APPS}/app-b", None, 404),
        ("GET", f"{APPS}/app-b/members", None, 404),
        ("PUT", f"{APPS}/app-b/members/erin", {"role": "viewer"}, 404),
        ("GET", f"{APPS}/app-b/scripts", None, 404),
        ("POST", f"{APPS}/app-b/scripts", {"name": "x", "source": "return {}"}, 404),
        ("GET", f"/api/v1/admin/scripts/{script_b['id']}", None, 404),
        ("PUT", f"/api/v1/admin/scripts/{script_b['id']}", {"source": "return 1"}, 404),
        ("DELETE", f"/api/v1/admin/scripts/{script_b['id']}", None, 404),
        ("GET", f"{APPS}/app-b/routes", None, 404),
        ("GET", f"{APPS}/app-b/executions", None, 404),
        ("POST", APPS, {"slug": "app-c", "name": "c"}, 403),
        ("POST", "/api/v1/auth/keys", {"name": "escape", "scopes": ["app:read"]}, 403),
    ]
    for method, path, body, expected in attempts:
        status, answer = await key.call(method, path, body)
        assert status == expected, (method, path, answer)
    status, still = await web.call("GET", f"/api/v1/admin/scripts/{script_b['id']}")
    assert (status, still["source"]) == (200, "return {}")
    assert (await web.call("GET", f"{APPS}/app-b"))[1] == b


async def test_a_key_never_exceeds_its_user_and_records_its_last_use(
    server: Server, anon: Api, admin: Identity
) -> None:
    boss = await signed_in(server, anon, admin)
    await boss.call("POST", APPS, {"slug": "shared", "name": "Shared"})
    vic = await create_identity(server, "vic", scopes=None)
    member = await boss.call("PUT", f"{APPS}/shared/members/vic", {"role": "viewer"})
    assert member[0] == 200
    web = await signed_in(server, anon, vic)
    _, secret = await new_key(web, name="all", scopes=["app:write", "script:write"])
    key = Api(anon.session, anon.base, {"Authorization": f"Bearer {secret}"})
    assert (await key.call("GET", f"{APPS}/shared"))[0] == 200
    assert (await key.call("GET", f"{APPS}/shared/scripts"))[0] == 200
    assert (await key.call("PATCH", f"{APPS}/shared", {"name": "x"}))[0] == 403
    body = {"name": "s", "source": "return {}"}
    assert (await key.call("POST", f"{APPS}/shared/scripts", body))[0] == 403
    _, listed = await web.call("GET", "/api/v1/auth/keys")
    assert listed["items"][0]["last_used_at"] is not None


async def test_owners_manage_members_and_a_removed_member_is_refused_at_once(
    server: Server, anon: Api, api: Api
) -> None:
    olga = await create_identity(server, "olga", scopes=None)
    ed = await create_identity(server, "ed", scopes=None)
    owner = await signed_in(server, anon, olga)
    editor = await signed_in(server, anon, ed)
    assert (await owner.call("POST", APPS, {"slug": "team", "name": "Team"}))[0] == 201
    assert (await editor.call("GET", f"{APPS}/team"))[0] == 404  # not a member yet
    assert (await editor.call("GET", APPS))[1] == {"items": []}
    status, member = await owner.call(
        "PUT", f"{APPS}/team/members/ed", {"role": "editor"}
    )
    assert (status, member["role"], member["username"]) == (200, "editor", "ed")
    assert [a["slug"] for a in (await editor.call("GET", APPS))[1]["items"]] == ["team"]
    script = {"name": "main", "source": "return {}"}
    assert (await editor.call("POST", f"{APPS}/team/scripts", script))[0] == 201
    assert (await editor.call("PUT", f"{APPS}/team/members/ed", {"role": "owner"}))[
        0
    ] == 403
    assert (await editor.call("DELETE", f"{APPS}/team"))[0] == 403
    status, answer = await owner.call(
        "PUT", f"{APPS}/team/members/olga", {"role": "viewer"}
    )
    assert (status, answer["error"]["code"]) == (409, "conflict")  # the last owner
    assert (await owner.call("DELETE", f"{APPS}/team/members/ed"))[0] == 204
    assert (await editor.call("GET", f"{APPS}/team/scripts"))[0] == 404
    status, listed = await api.call("GET", f"{APPS}/team/members")
    assert [m["username"] for m in listed["items"]] == ["olga"]


async def test_admins_manage_users_and_the_last_admin_stays(
    server: Server, anon: Api, api: Api, admin: Identity
) -> None:
    plain = await create_identity(server, "plain", scopes=None)
    web = await signed_in(server, anon, plain)
    assert (await web.call("GET", "/api/v1/admin/users"))[0] == 403
    # Keys never manage users, not even an admin's key of every scope.
    assert (await api.call("GET", "/api/v1/admin/users"))[0] == 403
    boss = await signed_in(server, anon, admin)
    body = {"username": "New.User", "password": "long enough", "admin": False}
    status, user = await boss.call("POST", "/api/v1/admin/users", body)
    assert status == 201
    assert set(user) == {"id", "username", "admin", "created_at", "updated_at"}
    assert user["username"] == "new.user"
    status, again = await boss.call("POST", "/api/v1/admin/users", body)
    assert (status, again["error"]["code"]) == (409, "conflict")
    status, answer = await boss.call(
        "PATCH", "/api/v1/admin/users/admin", {"admin": False}
    )
    assert (status, answer["error"]["code"]) == (409, "conflict")
    status, _ = await boss.call(
        "PATCH", f"/api/v1/admin/users/{plain.user_id}", {"admin": True}
    )
    assert status == 200
    assert (await web.call("GET", "/api/v1/admin/users"))[0] == 200


async def test_secrets_never_appear_in_the_event_log_logs_or_responses(
    server: Server,
    anon: Api,
    admin: Identity,
    pool_of_server: asyncpg.Pool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    first, wrong, second = "first-Secret-pw", "wrong-Secret-pw", "second-Secret-pw"
    answers: list[str] = []

    async def call(client: Api, method: str, path: str, body: Any = None) -> Any:
        status, answer = await client.call(method, path, body)
        answers.append(repr(answer))
        assert status < 300, answer
        return answer

    boss = await signed_in(server, anon, admin)
    body = {"username": "carol", "password": first}
    await call(boss, "POST", "/api/v1/admin/users", body)
    assert (await login(server.url, "carol", wrong)).status == 401
    carol_login = await login(server.url, "carol", first)
    answers.append(repr(carol_login.body))
    token = carol_login.cookies["picloud_session"].value
    carol = Api(anon.session, anon.base, carol_login.headers)
    changed = await call(
        carol,
        "PUT",
        "/api/v1/auth/password",
        {"current_password": first, "new_password": second},
    )
    carol = Api(
        anon.session, anon.base, (await login(server.url, "carol", second)).headers
    )
    status, made = await carol.call(
        "POST", "/api/v1/auth/keys", {"name": "ci", "scopes": ["app:read"]}
    )
    assert status == 201
    secret = made["key"]  # the one answer allowed to carry it
    keyed = Api(anon.session, anon.base, {"Authorization": f"Bearer {secret}"})
    await call(keyed, "GET", "/api/v1/auth/me")
    await call(keyed, "GET", APPS)
    listed = await call(carol, "GET", "/api/v1/auth/keys")
    assert listed["items"][0]["prefix"] == secret[:12]
    await call(boss, "GET", "/api/v1/admin/users/carol/keys")
    await call(boss, "GET", "/api/v1/admin/users")
    await call(carol, "DELETE", f"/api/v1/auth/keys/{made['id']}")
    await call(boss, "GET", "/api/v1/openapi.json")

    secrets = [first, wrong, second, secret, token, admin.password, str(admin.key)]
    stored = await pool_of_server.fetch("SELECT data::text, meta::text FROM events")
    log_text = " ".join(r["data"] + r["meta"] for r in stored)
    tables = []
    for table in ("users", "api_keys", "sessions", "login_throttle"):
        rows = await pool_of_server.fetch(f"SELECT * FROM {table}")  # noqa: S608  # fixed names
        tables.append(repr([dict(r) for r in rows]))
    for value in secrets:
        assert value not in log_text, "a secret is in the event log"
        assert value not in caplog.text, "a secret is in the logs"
        assert value not in " ".join(tables), "a secret is in a table"
        assert not any(value in a for a in answers), "a secret is in an answer"
        assert value not in repr(changed)
    assert "password_hash" in log_text  # the hashes are there, and only they


@pytest.fixture
def pool_of_server(server: Server) -> asyncpg.Pool:
    assert server.services is not None
    return server.services.log.pool
