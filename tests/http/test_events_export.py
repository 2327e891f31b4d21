"""`picloud events` as a real subprocess beside a running server: JSONL and
Parquet hold what the API shows, go on from where they stopped, and no export
holds a hash, a key or a credential header."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from picloud.cli._progress import Progress
from picloud.server import Server
from tests.helpers import picloud_env
from tests.http.helpers import Api, create_identity, make_app, make_route

pytestmark = [pytest.mark.ray, pytest.mark.server]

EVENTS = "/api/v1/admin/events"


def events_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "picloud", "events", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


async def api_events(api: Api) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = ""
    while True:
        status, page = await api.call("GET", f"{EVENTS}?limit=1000{after}")
        assert status == 200, page
        items += page["items"]
        after = f"&after={page['next']}"
        if len(page["items"]) < 1000:
            return items


def secrets_in(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text]


async def test_jsonl_and_parquet_exports_match_the_api_and_keep_no_secret(
    server: Server, api: Api, tmp_path: Path
) -> None:
    kim = await create_identity(server, "kim")
    assert kim.key is not None
    secrets = [
        "$argon2",
        kim.key,
        hashlib.sha256(kim.key.encode()).hexdigest(),
        "Basic c2VjcmV0",
        "password_hash",
        "secret_hash",
    ]
    await make_app(api, "exp")
    await make_route(api, "exp", "return {}", "POST", "/later", dispatch_mode="async")
    status, _ = await api.call(
        "POST",
        "/apps/exp/later",
        {"x": 1},
        headers={"Authorization": "Basic c2VjcmV0"},
    )
    assert status == 202
    await api.call("PUT", "/api/v1/admin/apps/exp/kv/c/k", {"n": 1})
    shown = await api_events(api)
    assert secrets_in(json.dumps(shown), secrets) == []

    env = picloud_env(tmp_path / "data", PICLOUD_DATABASE_URL=server.dsn)
    jsonl = events_cli(env)
    lines = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert lines[: len(shown)] == shown  # the same events, fields and redaction
    assert secrets_in(jsonl.stdout, secrets) == []
    token = jsonl.stderr.rsplit("--after ", 1)[1].strip()

    out = tmp_path / "events.parquet"
    events_cli(env, "--format", "parquet", "-o", str(out))
    table = pq.read_table(out)
    assert table.column_names == [
        "position",
        "stream",
        "version",
        "type",
        "data",
        "meta",
        "recorded_at",
    ]
    rows = table.to_pylist()
    assert [r["position"] for r in rows] == [e["position"] for e in lines]
    assert [json.loads(r["data"]) for r in rows] == [e["data"] for e in lines]
    assert str(table.schema.field("recorded_at").type) == "timestamp[us, tz=UTC]"
    assert secrets_in(str(rows), secrets) == []

    # Going on from the token gives only what committed since.
    await api.call("PUT", "/api/v1/admin/apps/exp/kv/c/k2", 2)
    rest = events_cli(env, "--after", token, "--app", "exp", "--type", "kv.set.v1")
    [line] = rest.stdout.splitlines()
    assert json.loads(line)["data"]["key"] == "k2"


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_elsewhere() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    bar = Progress(tty, total=10)
    bar.advance(5)
    bar.finish()
    assert "\r[" in tty.getvalue()
    assert "5 of 10 events" in tty.getvalue()
    plain = io.StringIO()
    lines = Progress(plain, total=None, every_s=0.0)
    lines.advance(3)
    lines.finish()
    assert "\r" not in plain.getvalue()
    assert plain.getvalue().splitlines()[0].startswith("picloud: 3 events")
