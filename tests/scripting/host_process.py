"""A stand-in for an app host process: one AppRuntime watched by a Watchdog.

Reads one JSON request per line on stdin (``{"app": ..., "source": ...}``),
answers one JSON line on stdout. Before the watchdog kills the process it
appends the overrunning invocation to the file named by argv[1], as the real
host records which app brought it down. Run: python -m tests.scripting.host_process REC
"""

from __future__ import annotations

import asyncio
import json
import sys

import msgspec

from picloud.domain.sdk_ops import SDK
from picloud.errors import ScriptError
from picloud.scripting import AppRuntime, CurrentInvocation, ScriptLimits, Watchdog
from tests.scripting.helpers import MemorySdk, make_ctx

LIMITS = ScriptLimits(
    timeout_ms=300,
    hard_deadline_grace_ms=200,
    max_instructions=10**12,
    max_memory_bytes=128 << 20,
)


def main() -> None:
    record_path = sys.argv[1]

    def record(current: CurrentInvocation) -> None:
        with open(record_path, "ab") as f:
            f.write(msgspec.json.encode(current) + b"\n")

    runtimes: dict[str, AppRuntime] = {}
    watchdog = Watchdog(record, interval_s=0.02)
    watchdog.start()
    sdk = MemorySdk()
    for line in sys.stdin:
        request = json.loads(line)
        app = request["app"]
        if app not in runtimes:
            runtimes[app] = AppRuntime(app, LIMITS, sdk=SDK)
            watchdog.watch(runtimes[app])
        runtime = runtimes[app]
        try:
            script = runtime.compile("job", request["source"])
            result = asyncio.run(runtime.invoke(script, make_ctx(app), sdk))
            answer = {"ok": True, "value": result.value}
        except ScriptError as e:
            answer = {"ok": False, "error": str(e)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
