"""The second layer: a C call inside Lua that outlives the hard deadline
gets the whole host process killed, after the offending invocation is
recorded; the supervisor starts a new host and the other apps carry on."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from picloud.scripting import AppRuntime, CurrentInvocation, Watchdog
from tests.scripting.helpers import TEST_LIMITS, Runner, make_ctx

ROOT = Path(__file__).resolve().parents[2]

# One C call (gsub over 16 MB, about a second) that starts well before the
# 300 ms timeout: the hook cannot run inside it, so only the watchdog (hard
# deadline at 500 ms) can stop it.
STUCK_IN_C = 'local s = string.rep("ab", 8e6)\nlocal r = s:gsub(".", "%0%0")\nreturn #r'


class Host:
    def __init__(self, record: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.scripting.host_process", str(record)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def call(self, app: str, source: str) -> dict[str, Any] | None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"app": app, "source": source}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def test_overrunning_host_is_killed_and_replaced(tmp_path: Path) -> None:
    record = tmp_path / "overruns.jsonl"
    host = Host(record)
    try:
        assert host.call("good", "return 'fine'") == {"ok": True, "value": "fine"}
        started = time.monotonic()
        assert host.call("evil", STUCK_IN_C) is None  # no answer: the process died
        assert host.proc.wait(timeout=10) == -signal.SIGKILL
        assert time.monotonic() - started < 5
    finally:
        host.stop()
    recorded = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(recorded) == 1
    assert recorded[0]["app_id"] == "evil"

    replacement = Host(record)  # what Ray does when a host actor dies
    try:
        assert replacement.call("good", "return 'still fine'") == {
            "ok": True,
            "value": "still fine",
        }
        # A loop the hook can see stays in layer 1: a clean error, no kill.
        answer = replacement.call("evil", "while true do end")
        assert answer is not None
        assert "time limit" in answer["error"]
        assert replacement.proc.poll() is None
    finally:
        replacement.stop()


def test_watchdog_calls_back_then_kills(runtime: AppRuntime, run: Runner) -> None:
    seen: list[CurrentInvocation] = []
    kills: list[bool] = []
    watchdog = Watchdog(seen.append, kill=lambda: kills.append(True))
    watchdog.watch(runtime)
    assert watchdog.check() is None  # nothing running
    overdue = CurrentInvocation(
        app_id="app-a", execution_id="i-1", hard_deadline=time.monotonic() - 1
    )
    runtime._current = overdue  # what the runtime sets while Lua runs
    assert watchdog.check() == overdue
    assert seen == [overdue]
    assert kills == [True]
    runtime._current = None
    watchdog.unwatch(runtime)


async def test_current_names_the_running_invocation(
    runtime: AppRuntime, monkeypatch: Any
) -> None:
    during_lua: list[CurrentInvocation | None] = []
    during_await: list[CurrentInvocation | None] = []
    original = runtime.running_logs

    def spy() -> Any:  # called by log.info while the script's Lua code runs
        during_lua.append(runtime.current)
        return original()

    monkeypatch.setattr(runtime, "running_logs", spy)

    async def handler(op: str, args: list[Any]) -> Any:
        during_await.append(runtime.current)  # Lua is suspended
        return None

    ctx = make_ctx()
    script = runtime.compile(
        "w", "log.info('x')\nkv.collection('c'):get('k')\nreturn 1"
    )
    started = time.monotonic()
    await runtime.invoke(script, ctx, handler)
    limits = TEST_LIMITS
    [current] = during_lua
    assert current is not None
    assert (current.app_id, current.execution_id) == ("app-a", ctx.execution_id)
    expected = started + (limits.timeout_ms + limits.hard_deadline_grace_ms) / 1000
    assert abs(current.hard_deadline - expected) < 0.5
    assert during_await == [None]
    assert runtime.current is None
