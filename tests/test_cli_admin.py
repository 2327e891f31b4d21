"""`picloud admin create-user` / `create-key` / `revoke-key` as real subprocesses,
with and without a running server, on a configured and on the embedded database."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from picloud.domain.credentials import hash_password
from picloud.domain.identity import CreateUser
from picloud.errors import Conflict
from picloud.events import EventMeta
from picloud.server import Server
from tests.helpers import picloud_env
from tests.http.helpers import Api, create_identity, server_settings


def admin_cli(
    env: dict[str, str], *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "picloud", "admin", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def db_env(tmp_path: Path, database: str) -> dict[str, str]:
    return picloud_env(tmp_path / "data", PICLOUD_DATABASE_URL=database)


async def test_the_cli_sets_up_an_instance_before_any_server_runs(
    tmp_path: Path, database: str, ray_session: None
) -> None:
    env = db_env(tmp_path, database)
    made = admin_cli(env, "create-user", "Root", "--admin", stdin="a long password\n")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("created admin root (")
    assert "a long password" not in made.stdout + made.stderr
    key = admin_cli(env, "create-key", "--user", "root", "--name", "ci", "--all")
    assert key.returncode == 0, key.stderr
    secret = key.stdout.strip()
    assert key.stdout == secret + "\n"  # only the key on stdout
    assert secret.startswith("pic_")

    conn = await asyncpg.connect(database)
    try:
        row = await conn.fetchrow("SELECT secret_hash, scopes FROM api_keys")
        hashed = await conn.fetchval("SELECT password_hash FROM users")
    finally:
        await conn.close()
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert len(row["scopes"]) == 7
    assert hashed.startswith("$argon2id$")

    server = Server(server_settings(), database, owns_actors=True)
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, server.url, {"Authorization": f"Bearer {secret}"})
            status, me = await api.call("GET", "/api/v1/auth/me")
            assert (status, me["user"]["username"], me["user"]["admin"]) == (
                200,
                "root",
                True,
            )
            status, _ = await api.call(
                "POST", "/api/v1/admin/apps", {"slug": "first", "name": "First"}
            )
            assert status == 201
    finally:
        await server.stop()


async def test_the_cli_works_beside_a_running_server(
    tmp_path: Path, database: str, ray_session: None
) -> None:
    server = Server(server_settings(), database, owns_actors=True)
    await server.start()
    try:
        admin = await create_identity(server, "admin", admin=True)
        async with aiohttp.ClientSession() as session:
            api = Api(session, server.url, admin.bearer)
            await _beside(tmp_path, database, server, api)
    finally:
        await server.stop()


async def _beside(tmp_path: Path, database: str, server: Server, api: Api) -> None:
    env = db_env(tmp_path, database)
    status, _ = await api.call(
        "POST", "/api/v1/admin/apps", {"slug": "shop", "name": "Shop"}
    )
    assert status == 201
    made = admin_cli(env, "create-user", "kim", stdin="kim's password\n")
    assert made.returncode == 0, made.stderr
    # The server's ControlPlane decides with what the CLI wrote: kim exists.
    assert server.services is not None
    again = CreateUser(username="KIM", password_hash=hash_password("whatever pw"))
    with pytest.raises(Conflict):
        await server.services.control.execute(again, EventMeta(actor="test"))
    key = admin_cli(
        env,
        "create-key",
        "--user",
        "kim",
        "--name",
        "bot",
        "--scopes",
        "app:read,script:read",
        "events:read",
        "--app",
        "shop",
    )
    assert key.returncode != 0  # kim is no member of shop
    assert "no app 'shop'" in key.stderr
    assert "Traceback" not in key.stderr
    key = admin_cli(
        env,
        "create-key",
        "--user",
        "admin",
        "--name",
        "bot",
        "--scopes",
        "app:read",
        "--app",
        "shop",
    )
    assert key.returncode == 0, key.stderr
    bearer = {"Authorization": f"Bearer {key.stdout.strip()}"}
    status, listed = await api.call("GET", "/api/v1/admin/apps", headers=bearer)
    assert (status, [a["slug"] for a in listed["items"]]) == (200, ["shop"])

    conn = await asyncpg.connect(database)
    try:
        key_id = await conn.fetchval("SELECT id FROM api_keys WHERE name = 'bot'")
    finally:
        await conn.close()
    revoked = admin_cli(env, "revoke-key", key_id)
    assert revoked.returncode == 0, revoked.stderr
    status, _ = await api.call("GET", "/api/v1/admin/apps", headers=bearer)
    assert status == 401


async def test_the_cli_refuses_bad_input_without_a_traceback(
    tmp_path: Path, database: str
) -> None:
    env = db_env(tmp_path, database)
    cases = [
        (("create-user", "x"), "short\n", "at least 8"),
        (("create-user", "bad name"), "long enough pw\n", "invalid username"),
        (("create-key", "--user", "ghost", "--name", "k", "--all"), "", "no user"),
    ]
    for args, stdin, message in cases:
        result = admin_cli(env, *args, stdin=stdin)
        assert result.returncode != 0
        assert message in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
    made = admin_cli(env, "create-user", "amy", stdin="long enough pw\n")
    assert made.returncode == 0
    result = admin_cli(
        env, "create-key", "--user", "amy", "--name", "k", "--scopes", "app:all"
    )
    assert "unknown scope" in result.stderr


@pytest.mark.timeout(240)
def test_the_cli_uses_the_embedded_database_when_none_is_configured(
    tmp_path: Path,
) -> None:
    env = picloud_env(tmp_path / "data")
    made = admin_cli(env, "create-user", "solo", "--admin", stdin="solo password\n")
    assert made.returncode == 0, made.stderr
    key = admin_cli(env, "create-key", "--user", "solo", "--name", "k", "--all")
    assert key.returncode == 0, key.stderr
    assert key.stdout.startswith("pic_")
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()


def _lines(done: subprocess.CompletedProcess[str]) -> list[list[str]]:
    assert done.returncode == 0, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines()]


async def test_users_members_and_keys_from_the_cli_and_an_admin_key_for_automation(
    tmp_path: Path, database: str, ray_session: None
) -> None:
    env = db_env(tmp_path, database)
    for args in (("boss", "--admin"), ("ann",)):
        added = admin_cli(env, "users", "add", *args, stdin="a long password\n")
        assert added.returncode == 0, added.stderr
    users = _lines(admin_cli(env, "users", "list"))
    assert sorted((u[1], u[2]) for u in users) == [("ann", "user"), ("boss", "admin")]
    made = admin_cli(
        env, "keys", "add", "--user", "boss", "--name", "ops", "--scopes", "admin"
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert made.stdout == secret + "\n"  # only the key on stdout; its id on stderr
    key_id = made.stderr.split("created key ")[1].split()[0]
    keys = _lines(admin_cli(env, "keys", "list", "--user", "boss"))
    assert [(k[0], k[2], k[4], k[6]) for k in keys] == [
        (key_id, "ops", "admin", "active")
    ]
    server = Server(server_settings(), database, owns_actors=True)
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            ops = Api(session, server.url, {"Authorization": f"Bearer {secret}"})
            status, app = await ops.call(
                "POST", "/api/v1/admin/users", {"username": "bot", "password": "x" * 12}
            )
            assert status == 201, app
            status, _ = await ops.call("GET", "/api/v1/admin/apps")
            assert status == 200
            status, _ = await ops.call(
                "POST", "/api/v1/admin/apps", {"slug": "team", "name": "Team"}
            )
            assert status == 403, "the admin scope alone creates no app"
    finally:
        await server.stop()
    everything = admin_cli(env, "keys", "add", "--user", "boss", "--name", "a", "--all")
    assert everything.returncode == 0
    [all_key] = [k for k in _lines(admin_cli(env, "keys", "list")) if k[2] == "a"]
    assert "admin" not in all_key[4].split(), "--all never includes admin"
    assert admin_cli(env, "members", "list", "nope").returncode != 0
    assert admin_cli(env, "keys", "remove", key_id).returncode == 0
    keys = _lines(admin_cli(env, "keys", "list", "--user", "boss"))
    assert [k[6] for k in keys if k[0] == key_id] == ["revoked"]
    assert admin_cli(env, "users", "remove", "ann").returncode == 0
    assert "ann" not in admin_cli(env, "users", "list").stdout
