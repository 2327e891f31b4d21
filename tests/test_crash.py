"""kill -9 of the whole server process tree between commit and delivery: after a
restart every committed trigger event is still delivered (none lost)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port, picloud_env
from tests.serving import admin_cli, kill_tree, serve, wait_healthy

pytestmark = pytest.mark.server

EVENTS = 20
# ~0.1 s of Lua per delivery: the deliveries are still running when we kill.
SLOW_HANDLER = """
local x = 0
for i = 1, 2000000 do x = x + i end
kv.collection("out"):set(ctx.event.key, true)
"""
BURST = (
    'for i = 1, 20 do kv.collection("in"):set(string.format("k%02d", i), i) end'
    " return {}"
)


class Client:
    """The admin listener on ``port``; ``/apps/`` paths go to ``apps_port``."""

    def __init__(self, port: int, apps_port: int, key: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.apps_base = f"http://127.0.0.1:{apps_port}"
        self.key = key

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        base = self.apps_base if path.startswith("/apps/") else self.base
        request = urllib.request.Request(  # noqa: S310  # loopback only
            base + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.key}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


@pytest.mark.timeout(600)
def test_kill_9_between_commit_and_delivery_loses_no_trigger(data_home: Path) -> None:
    port = free_port()
    env = picloud_env(data_home, PICLOUD_HTTP_PORT=str(port))
    admin_cli(env, "create-user", "root", "--admin", stdin="a long password\n")
    key = admin_cli(env, "create-key", "--user", "root", "--name", "t", "--all")
    process = serve(env)
    try:
        wait_healthy(port, process)
        api = Client(port, int(env["PICLOUD_APPS_PORT"]), key)
        assert (
            api.call("POST", "/api/v1/admin/apps", {"slug": "crash", "name": "c"})[0]
            == 201
        )
        status, handler = api.call(
            "POST",
            "/api/v1/admin/apps/crash/scripts",
            {"name": "h", "source": SLOW_HANDLER},
        )
        assert status == 201, handler
        status, _ = api.call(
            "POST",
            "/api/v1/admin/apps/crash/triggers/kv",
            {"script_id": handler["id"], "collection": "in"},
        )
        assert status == 201
        status, burst = api.call(
            "POST",
            "/api/v1/admin/apps/crash/scripts",
            {"name": "burst", "source": BURST},
        )
        api.call(
            "POST",
            f"/api/v1/admin/scripts/{burst['id']}/routes",
            {"method": "POST", "path": "/burst"},
        )
        status, _ = api.call("POST", "/apps/crash/burst")
        assert status == 200  # the 20 writes are committed: acknowledged
        kill_tree(process)
        process = serve(env)
        wait_healthy(port, process)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status, page = api.call("GET", "/api/v1/admin/apps/crash/kv/out?limit=100")
            if status == 200 and len(page["items"]) == EVENTS:
                break
            time.sleep(0.5)
        assert status == 200, page
        assert sorted(i["key"] for i in page["items"]) == [
            f"k{n:02d}" for n in range(1, EVENTS + 1)
        ]
    finally:
        kill_tree(process)
