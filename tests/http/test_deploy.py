"""`picloud deploy`, `pull` and `rollback` as real subprocesses against a
running server: a folder becomes the app as one change set (all or nothing),
a pulled folder deploys back to no change, names everywhere, never ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from picloud.domain.access import Scope
from picloud.server import Server
from tests.helpers import picloud_env, run_picloud
from tests.http.helpers import Api, Identity, create_identity, make_app

pytestmark = [pytest.mark.ray, pytest.mark.server]

MANIFEST = """
app = "shop"

[scripts.util]
kind = "module"

[[routes]]
method = "GET"
path = "/hello/{name}"
script = "hello"

[[routes]]
method = "POST"
path = "/orders"
script = "place"
dispatch_mode = "async"
retry = {max_attempts = 2, base_ms = 50}

[[triggers]]
kind = "kv"
script = "on_order"
ops = ["set"]
collection = "orders"

[[triggers]]
kind = "schedule"
script = "nightly"
cron = "0 3 * * *"
timezone = "Europe/Paris"

[cors]
origins = ["https://shop.example"]
"""
SOURCES = {
    "util": "local M = {}\nfunction M.greet(n) return 'hello ' .. n end\nreturn M\n",
    "hello": (
        "local util = require('util')\n"
        "return {greeting = util.greet(ctx.request.params.name)}\n"
    ),
    "place": "kv.collection('orders'):set('last', ctx.request.body)\nreturn {}\n",
    "on_order": "log.info('order')\nreturn {}\n",
    "nightly": "return {}\n",
}


def write_folder(folder: Path, manifest: str = MANIFEST, **sources: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "picloud.toml").write_text(manifest)
    for name, source in {**SOURCES, **sources}.items():
        (folder / f"{name}.lua").write_text(source)
    return folder


async def cli(server: Server, key: str, tmp: Path, *args: str) -> tuple[int, str, str]:
    """``picloud ARGS`` against ``server``, with ``key``."""
    env = picloud_env(tmp / "cli-data", PICLOUD_URL=server.url, PICLOUD_API_KEY=key)
    return await run_picloud(env, *args)


async def app_events(api: Api, slug: str) -> int:
    status, page = await api.call("GET", f"/api/v1/admin/events?app={slug}&limit=1000")
    assert status == 200, page
    return len(page["items"])


async def listed(api: Api, slug: str, what: str) -> list[dict[str, Any]]:
    status, page = await api.call("GET", f"/api/v1/admin/apps/{slug}/{what}")
    assert status == 200, page
    items: list[dict[str, Any]] = page["items"]
    return items


async def deployed_shop(
    server: Server, api: Api, admin: Identity, tmp_path: Path
) -> tuple[Path, str]:
    """The app ``shop``, deployed from the folder of this module: the folder,
    and what the deploy printed."""
    assert admin.key is not None
    await make_app(api, "shop")
    folder = write_folder(tmp_path / "shop")
    code, out, err = await cli(server, admin.key, tmp_path, "deploy", str(folder))
    assert code == 0, err
    return folder, out


async def test_a_folder_deploys_as_one_change_set_and_pulls_back_unchanged(
    server: Server, api: Api, admin: Identity, tmp_path: Path
) -> None:
    assert admin.key is not None
    folder, out = await deployed_shop(server, api, admin, tmp_path)
    assert "+ script util" in out, out
    assert "+ route GET /hello/{name}" in out, out
    assert "applied as one change set" in out
    status, body = await api.call("GET", "/apps/shop/hello/ana")
    assert (status, body) == (200, {"greeting": "hello ana"})
    scripts = {s["name"]: s for s in await listed(api, "shop", "scripts")}
    assert scripts["util"]["kind"] == "module"
    triggers = await listed(api, "shop", "triggers")
    schedule = next(t for t in triggers if t["kind"] == "schedule")
    assert (schedule["cron"], schedule["timezone"]) == ("0 3 * * *", "Europe/Paris")
    [async_route] = [
        r for r in await listed(api, "shop", "routes") if r["method"] == "POST"
    ]
    assert async_route["retry"] == {"max_attempts": 2, "base_ms": 50}
    status, settings = await api.call("GET", "/api/v1/admin/apps/shop/settings")
    assert settings["cors"]["origins"] == ["https://shop.example"]

    # The folder again: nothing to change, nothing appended.
    before = await app_events(api, "shop")
    code, out, err = await cli(server, admin.key, tmp_path, "deploy", str(folder))
    assert code == 0, err
    assert "nothing to change" in out
    assert await app_events(api, "shop") == before

    # Pulled into a new folder, it deploys back to the same app.
    pulled = tmp_path / "pulled"
    code, out, err = await cli(server, admin.key, tmp_path, "pull", "shop", str(pulled))
    assert code == 0, err
    assert (pulled / "hello.lua").read_text() == SOURCES["hello"]
    code, out, err = await cli(server, admin.key, tmp_path, "deploy", str(pulled))
    assert code == 0, err
    assert "nothing to change" in out, out

    # A script the app does not have would be deployed: pull refuses to
    # leave it there, unless told to remove it.
    (pulled / "extra.lua").write_text("return {}\n")
    code, _, err = await cli(server, admin.key, tmp_path, "pull", "shop", str(pulled))
    assert code == 1
    assert "extra.lua" in err, err
    code, _, err = await cli(
        server, admin.key, tmp_path, "pull", "shop", str(pulled), "--replace"
    )
    assert code == 0, err
    assert not (pulled / "extra.lua").exists()


async def test_a_failing_deploy_changes_nothing_and_says_why(
    server: Server, api: Api, admin: Identity, tmp_path: Path
) -> None:
    assert admin.key is not None
    await deployed_shop(server, api, admin, tmp_path)
    before = await app_events(api, "shop")
    scripts_before = await listed(api, "shop", "scripts")

    # A good change and a bad one together: neither lands.
    broken = write_folder(
        tmp_path / "broken",
        hello="return {greeting = 'changed'}\n",
        nightly="return {\n",  # a syntax error
    )
    code, _, err = await cli(server, admin.key, tmp_path, "deploy", str(broken))
    assert code == 1
    assert "nightly:2:" in err, err  # the script and the line
    assert await app_events(api, "shop") == before
    assert await listed(api, "shop", "scripts") == scripts_before
    status, body = await api.call("GET", "/apps/shop/hello/ana")
    assert (status, body) == (200, {"greeting": "hello ana"})
    before = await app_events(api, "shop")  # with that run's record

    # A route naming a script the folder does not have.
    manifest = (
        MANIFEST + '\n[[routes]]\nmethod = "GET"\npath = "/x"\nscript = "ghost"\n'
    )
    ghost = write_folder(tmp_path / "ghost", manifest)
    code, _, err = await cli(server, admin.key, tmp_path, "deploy", str(ghost))
    assert code == 1
    assert "ghost" in err, err
    assert await app_events(api, "shop") == before


async def test_dry_run_prints_the_diff_and_prune_removes_what_the_folder_lacks(
    server: Server, api: Api, admin: Identity, tmp_path: Path
) -> None:
    assert admin.key is not None
    folder, _ = await deployed_shop(server, api, admin, tmp_path)
    before = await app_events(api, "shop")

    (folder / "hello.lua").write_text("return {greeting = 'v2'}\n")
    (folder / "nightly.lua").unlink()
    manifest = MANIFEST.replace(
        '[[triggers]]\nkind = "schedule"\nscript = "nightly"\n'
        'cron = "0 3 * * *"\ntimezone = "Europe/Paris"\n',
        "",
    )
    (folder / "picloud.toml").write_text(manifest)
    code, out, err = await cli(
        server, admin.key, tmp_path, "deploy", str(folder), "--dry-run"
    )
    assert code == 0, err
    assert "~ script hello" in out, out
    assert "- script nightly" in out, out
    assert "- trigger schedule:nightly" in out, out
    assert await app_events(api, "shop") == before  # a dry run appends nothing

    code, out, err = await cli(server, admin.key, tmp_path, "deploy", str(folder))
    assert code == 0, err
    names = {s["name"] for s in await listed(api, "shop", "scripts")}
    assert "nightly" not in names
    assert all(t["kind"] != "schedule" for t in await listed(api, "shop", "triggers"))
    assert await api.call("GET", "/apps/shop/hello/x") == (200, {"greeting": "v2"})

    # Roll back by names: the script's first version again, as version 3.
    code, out, err = await cli(
        server, admin.key, tmp_path, "rollback", "shop", "hello", "1"
    )
    assert code == 0, err
    assert "saved again as version 3" in out
    status, body = await api.call("GET", "/apps/shop/hello/ana")
    assert (status, body) == (200, {"greeting": "hello ana"})
    code, out, err = await cli(
        server, admin.key, tmp_path, "scripts", "versions", "shop", "hello"
    )
    assert code == 0, err
    assert [line.split("\t")[0] for line in out.splitlines()] == ["v1", "v2", "v3"]


async def test_the_cli_without_a_key_or_server_says_so_in_one_line(
    server: Server, tmp_path: Path
) -> None:
    env_key = ""
    code, _, err = await cli(server, env_key, tmp_path, "apps", "list")
    assert code == 1
    assert "PICLOUD_API_KEY" in err, err
    assert "Traceback" not in err


async def test_without_app_write_a_deploy_may_keep_cors_but_not_change_it(
    server: Server, api: Api, admin: Identity, tmp_path: Path
) -> None:
    assert admin.key is not None
    folder, _ = await deployed_shop(server, api, admin, tmp_path)
    scopes = frozenset({Scope.APP_READ, Scope.SCRIPT_READ, Scope.SCRIPT_WRITE})
    editor = await create_identity(
        server, "deployer", admin=True, scopes=scopes | {Scope.TRIGGERS_MANAGE}
    )
    assert editor.key is not None

    # The same CORS policy and a new script version: allowed.
    (folder / "hello.lua").write_text("return {greeting = 'v2'}\n")
    code, out, err = await cli(server, editor.key, tmp_path, "deploy", str(folder))
    assert code == 0, err
    assert "~ script hello" in out, out

    # Another policy: refused, naming what needs more, and nothing changes.
    before = await app_events(api, "shop")
    changed = MANIFEST.replace("https://shop.example", "https://other.example")
    (folder / "picloud.toml").write_text(changed)
    (folder / "hello.lua").write_text("return {greeting = 'v3'}\n")
    code, _, err = await cli(server, editor.key, tmp_path, "deploy", str(folder))
    assert code == 1
    assert "cors" in err, err
    assert "app:write" in err, err
    assert await app_events(api, "shop") == before
