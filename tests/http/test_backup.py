"""`picloud backup` and `picloud restore` as real subprocesses: a backup of a
live server's database restored into an empty one answers the same (routes,
data, secrets, sign-in), its projections equal a rebuild from the log, and a
restore never writes over a database that holds a log."""

from __future__ import annotations

import stat
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from picloud.server import Server
from tests.helpers import picloud_env, run_picloud
from tests.http.helpers import (
    Api,
    create_identity,
    login,
    make_app,
    make_route,
    server_settings,
)

pytestmark = [pytest.mark.ray, pytest.mark.server]

SCRIPT = (
    "local n = kv.collection('visits'):get('count') or 0\n"
    "return {count = n, key = secrets.TOKEN, name = ctx.request.params.name}\n"
)


async def picloud(tmp: Path, dsn: str, *args: str) -> tuple[int, str, str]:
    env = picloud_env(tmp / "cli-data", PICLOUD_DATABASE_URL=dsn)
    return await run_picloud(env, *args)


@pytest.mark.timeout(600)
async def test_a_restored_backup_answers_as_the_original_did(
    server: Server, api: Api, database: str, empty_database: str, tmp_path: Path
) -> None:
    await make_app(api, "keep")
    await make_route(api, "keep", SCRIPT, "GET", "/show/{name}", name="show")
    status, _ = await api.call("PUT", "/api/v1/admin/apps/keep/kv/visits/count", 41)
    assert status in (200, 204)
    status, _ = await api.call(
        "PUT", "/api/v1/admin/apps/keep/secrets/TOKEN", {"value": "s3cret-token"}
    )
    assert status in (200, 201, 204)
    person = await create_identity(server, "kept-person", scopes=None)
    status, original = await api.call("GET", "/apps/keep/show/ana")
    assert status == 200, original
    assert original == {"count": 41, "key": "s3cret-token", "name": "ana"}

    backup = tmp_path / "picloud.backup"
    code, out, err = await picloud(tmp_path, database, "backup", str(backup))
    assert code == 0, err
    assert "backed up" in out
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600  # hashes are in it
    assert b"s3cret-token" not in backup.read_bytes()  # sealed (and gzip'd)

    code, out, err = await picloud(tmp_path, empty_database, "restore", str(backup))
    assert code == 0, err
    assert "restored" in out
    # Never over a log: the same restore again refuses, in one line.
    code, _, err = await picloud(tmp_path, empty_database, "restore", str(backup))
    assert code == 1
    assert "empty database" in err, err
    assert "Traceback" not in err
    # The run columns the appender writes are filled from the restored rows.
    restored_log = await asyncpg.connect(empty_database)
    try:
        runs, unfilled = await restored_log.fetchrow(
            "SELECT count(*), count(*) FILTER (WHERE execution_id IS NULL"
            "  OR run_status IS NULL)"
            " FROM events WHERE type = 'invocation.recorded.v1'"
        )
    finally:
        await restored_log.close()
    assert runs >= 1
    assert unfilled == 0
    # The projections are what the log makes them.
    code, out, err = await picloud(tmp_path, empty_database, "replay")
    assert code == 0, out + err

    restored = Server(server_settings(), empty_database, owns_actors=True)
    await restored.start()
    try:
        async with aiohttp.ClientSession() as session:
            admin = Api(session, restored.url, api.headers, apps_base=restored.apps_url)
            status, again = await admin.call("GET", "/apps/keep/show/ana")
            assert (status, again) == (200, original)
            status, secrets = await admin.call("GET", "/api/v1/admin/apps/keep/secrets")
            assert status == 200
            assert [s["name"] for s in secrets["items"]] == ["TOKEN"]
        signed_in = await login(restored.url, person.username, person.password)
        assert signed_in.status == 200, signed_in.body
    finally:
        await restored.stop()


async def test_a_file_that_is_not_a_backup_is_refused_in_one_line(
    empty_database: str, tmp_path: Path
) -> None:
    bogus = tmp_path / "bogus"
    bogus.write_bytes(b"not a backup at all\n")
    code, _, err = await picloud(tmp_path, empty_database, "restore", str(bogus))
    assert code == 1
    assert "not a PiCloud backup" in err, err
    assert "Traceback" not in err
