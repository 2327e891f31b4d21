"""Apps' secrets over a real server and the CLI: set, listed by name only,
read by scripts as ``secrets.NAME``, sealed in the log, scrubbed from the
records of a run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from picloud.domain.secret_box import new_key
from picloud.server import Server
from tests.helpers import picloud_env
from tests.http.helpers import (
    Api,
    eventually,
    make_app,
    make_route,
)

pytestmark = [pytest.mark.ray, pytest.mark.server, pytest.mark.shared_server]

VALUE = "s3cr3t-Value-0f-the-token"


async def test_a_secret_is_set_listed_by_name_and_read_by_scripts(
    api: Api, server: Server
) -> None:
    app = await make_app(api, "vault")
    status, made = await api.call(
        "PUT", "/api/v1/admin/apps/vault/secrets/API_TOKEN", {"value": VALUE}
    )
    assert status == 200, made
    assert set(made) == {"app_id", "name", "created_at", "updated_at"}
    assert made["name"] == "API_TOKEN"
    _, listed = await api.call("GET", "/api/v1/admin/apps/vault/secrets")
    assert [s["name"] for s in listed["items"]] == ["API_TOKEN"]
    assert VALUE not in str(listed)
    source = """
    log.info("token is " .. secrets.API_TOKEN)
    return {same = secrets.API_TOKEN == ctx.secrets.API_TOKEN,
            n = #secrets.API_TOKEN, missing = secrets.NOPE == nil}
    """
    await make_route(api, "vault", source, path="/use")
    status, body = await api.call("GET", "/apps/vault/use")
    assert (status, body) == (200, {"same": True, "n": len(VALUE), "missing": True})
    _, log = await api.call("GET", "/api/v1/admin/apps/vault/executions")
    [run] = log["items"]
    assert run["logs"][0]["message"] == "token is [secret API_TOKEN]"
    # In the log, the value is sealed: its ciphertext and the key's id only.
    conn = await asyncpg.connect(server.dsn)
    try:
        rows = await conn.fetch("SELECT type, data::text AS data FROM events")
        stored = await conn.fetchval("SELECT ciphertext FROM app_secrets")
    finally:
        await conn.close()
    assert not [r for r in rows if VALUE in r["data"]]
    [sealed] = [r["data"] for r in rows if r["type"] == "secret.set.v1"]
    assert stored in sealed
    assert app["id"] in sealed


async def test_a_failed_run_records_no_secret(api: Api) -> None:
    await make_app(api, "leaky")
    await api.call("PUT", "/api/v1/admin/apps/leaky/secrets/KEY", {"value": VALUE})
    await make_route(api, "leaky", 'error("bad key " .. secrets.KEY)', path="/x")
    status, body = await api.call("GET", "/apps/leaky/x")
    assert status == 500
    _, log = await api.call("GET", "/api/v1/admin/apps/leaky/executions")
    [run] = log["items"]
    assert run["id"] == body["error"]["execution_id"]
    assert "bad key [secret KEY]" in run["error"]
    assert VALUE not in str(log)


async def test_secrets_are_read_only_per_app_and_deletable(api: Api) -> None:
    await make_app(api, "mine")
    await make_app(api, "theirs")
    await api.call("PUT", "/api/v1/admin/apps/mine/secrets/ONLY", {"value": VALUE})
    read = "return {v = secrets.ONLY}"
    await make_route(api, "mine", read, path="/r")
    await make_route(api, "theirs", read, path="/r")
    await make_route(api, "mine", "secrets.ONLY = 'x'", path="/w", name="writer")
    assert await api.call("GET", "/apps/mine/r") == (200, {"v": VALUE})
    assert await api.call("GET", "/apps/theirs/r") == (200, {})  # no such secret
    status, _ = await api.call("GET", "/apps/mine/w")
    assert status == 500
    assert await api.call("DELETE", "/api/v1/admin/apps/mine/secrets/ONLY") == (
        204,
        "",
    )
    status, body = await api.call("DELETE", "/api/v1/admin/apps/mine/secrets/ONLY")
    assert (status, body["error"]["code"]) == (404, "not_found")
    assert await api.call("GET", "/apps/mine/r") == (200, {})
    for name in ("1BAD", "has-dash", "x" * 65):
        status, body = await api.call(
            "PUT", f"/api/v1/admin/apps/mine/secrets/{name}", {"value": "v"}
        )
        assert (status, body["error"]["code"]) == (400, "invalid_input"), name
    status, body = await api.call(
        "PUT", "/api/v1/admin/apps/mine/secrets/OK", {"value": "v", "extra": 1}
    )
    assert status == 400


def secrets_cli(
    env: dict[str, str], *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "picloud", "secrets", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_cli_sets_lists_and_deletes_secrets(
    api: Api, server: Server, tmp_path: Path
) -> None:
    await make_app(api, "clied")
    await make_route(api, "clied", "return {v = secrets.FROM_CLI}", path="/r")
    env = picloud_env(
        tmp_path / "data",
        PICLOUD_DATABASE_URL=server.dsn,
        PICLOUD_SECRET_KEY=server.settings.secret_key or new_key(),
    )
    made = secrets_cli(env, "set", "clied", "FROM_CLI", stdin=VALUE + "\n")
    assert made.returncode == 0, made.stderr
    assert VALUE not in made.stdout + made.stderr

    async def readable() -> bool:
        return await api.call("GET", "/apps/clied/r") == (200, {"v": VALUE})

    await eventually(readable)
    listed = secrets_cli(env, "list", "clied")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("FROM_CLI\t")
    assert VALUE not in listed.stdout
    gone = secrets_cli(env, "delete", "clied", "FROM_CLI")
    assert gone.returncode == 0, gone.stderr
    again = secrets_cli(env, "delete", "clied", "FROM_CLI")
    assert again.returncode != 0
    assert "no secret 'FROM_CLI'" in again.stderr
    # Sealed with another key, a secret is named as such, not garbled.
    other = {**env, "PICLOUD_SECRET_KEY": new_key()}
    made = secrets_cli(other, "set", "clied", "FROM_CLI", stdin="x" * 8)
    assert made.returncode == 0, made.stderr
    status, _ = await api.call("GET", "/apps/clied/r")
    assert status == 500
    _, log = await api.call("GET", "/api/v1/admin/apps/clied/executions?status=error")
    assert "sealed with another key" in log["items"][0]["error"]
