"""`picloud serve` and `picloud migrate` as a newcomer runs them: real subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

import picloud
from tests.helpers import free_port, picloud_env

pytestmark = pytest.mark.server


def get_json(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  # loopback URL
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def gone(pid: int) -> bool:
    """The process exited (a zombie waits only for its parent to reap it)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def listening_addresses(pid: int) -> set[str]:
    """The addresses the process and all it started listen on (TCP): alone
    on a machine, PiCloud, its app hosts and its Ray serve loopback only."""
    root = psutil.Process(pid)
    found = set()
    for p in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    found.add(c.laddr.ip.removeprefix("::ffff:"))
    return found


@pytest.mark.timeout(240)
def test_serve_starts_from_nothing_answers_healthz_and_stops_cleanly(
    data_home: Path,
) -> None:
    data_dir = data_home / "fresh"
    port = free_port()
    env = picloud_env(data_dir, PICLOUD_HTTP_PORT=str(port))
    process = subprocess.Popen(
        [sys.executable, "-m", "picloud", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        health = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = get_json(f"http://127.0.0.1:{port}/healthz")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        assert health is not None, "no /healthz answer"
        status, body = health
        assert status == 200
        assert body["status"] == "ok"
        assert listening_addresses(process.pid) == {"127.0.0.1"}
        assert (data_dir / "postgres" / "PG_VERSION").exists()
        postmaster = data_dir / "postgres" / "postmaster.pid"
        postgres_pid = int(postmaster.read_text().split()[0])
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, output
    # A clean stop stops the supervised Postgres too (no restart after it).
    assert not postmaster.exists()
    assert gone(postgres_pid)
    assert "restarting it" not in output
    assert f"listening on http://127.0.0.1:{port}" in output
    assert "PiCloud stopped" in output
    # A fresh instance says how to make the first admin (there is no default one).
    assert "picloud admin create-user NAME --admin" in output
    with pytest.raises(ConnectionRefusedError):  # nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_migrate_applies_once_then_has_nothing_to_do(tmp_path: Path) -> None:
    env = picloud_env(tmp_path / "data")
    first = subprocess.run(
        [sys.executable, "-m", "picloud", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "applied [1," in first.stdout
    second = subprocess.run(
        [sys.executable, "-m", "picloud", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "nothing to apply" in second.stdout


def test_a_malformed_setting_is_a_clear_error(tmp_path: Path) -> None:
    env = picloud_env(tmp_path / "data", PICLOUD_HTTP_PORT="eighty")
    result = subprocess.run(
        [sys.executable, "-m", "picloud", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "PICLOUD_HTTP_PORT='eighty'" in result.stderr
    assert "Traceback" not in result.stderr


def _picloud(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "picloud", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_version_and_migration_status(tmp_path: Path) -> None:
    env = picloud_env(tmp_path / "data")
    version = _picloud(env, "--version")
    assert version.returncode == 0
    assert version.stdout.strip() == f"picloud {picloud.__version__}"
    before = _picloud(env, "migrate", "--status")
    assert before.returncode == 0, before.stderr
    lines = before.stdout.splitlines()
    assert lines[0].startswith("0001 event_log")
    assert all(line.endswith("pending") for line in lines)
    assert _picloud(env, "migrate").returncode == 0
    after = _picloud(env, "migrate", "--status").stdout.splitlines()
    assert len(after) == len(lines)
    assert not any(line.endswith("pending") for line in after)


def test_a_busy_port_or_an_unusable_data_dir_is_one_line_before_anything_starts(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = picloud_env(tmp_path / "data", PICLOUD_APPS_PORT=str(port))
        started = time.monotonic()
        busy = _picloud(env, "serve")
    assert busy.returncode != 0
    assert busy.stderr.strip().splitlines()[-1] == (
        f"picloud: port {port} on 127.0.0.1 is in use; stop what listens there"
        " or set PICLOUD_APPS_PORT"
    )
    assert "Traceback" not in busy.stderr
    assert time.monotonic() - started < 15, "it started things first"
    assert not (tmp_path / "data" / "postgres").exists(), "Postgres was started"
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    unusable = _picloud(picloud_env(blocked / "data"), "serve")
    assert unusable.returncode != 0
    last = unusable.stderr.strip().splitlines()[-1]
    assert last.startswith(f"picloud: cannot use the data directory {blocked}/data")
    assert "PICLOUD_DATA_DIR" in last


def test_joining_a_cluster_without_its_database_or_secret_is_one_line(
    tmp_path: Path,
) -> None:
    env = picloud_env(tmp_path / "data")
    cases = {
        ("serve", "--join", "10.0.0.1:6379"): "PICLOUD_DATABASE_URL",
        ("host",): "give --join ADDRESS or set PICLOUD_RAY_ADDRESS",
        ("serve", "--no-front-door"): "give --join ADDRESS",
    }
    for args, named in cases.items():
        done = _picloud(env, *args)
        assert done.returncode != 0, args
        assert named in done.stderr.strip().splitlines()[-1], (args, done.stderr)
        assert "Traceback" not in done.stderr
    with_db = {**env, "PICLOUD_DATABASE_URL": "postgresql://db.example/picloud"}
    done = _picloud(with_db, "host", "--join", "10.0.0.1:6379")
    assert "PICLOUD_CLUSTER_SECRET, the same on every node" in done.stderr
    assert not (tmp_path / "data" / "postgres").exists(), "Postgres was started"


def test_completion_scripts_know_every_command_and_bash_can_read_them(
    data_home: Path,
) -> None:
    env = picloud_env(data_home)
    done = subprocess.run(
        [sys.executable, "-m", "picloud", "completion", "bash"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for command in ("serve", "deploy", "pull", "rollback", "backup", "restore"):
        assert command in done.stdout, command
    checked = subprocess.run(
        ["bash", "-n"], input=done.stdout, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
