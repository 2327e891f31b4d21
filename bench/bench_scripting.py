"""Throughput and overhead of the Lua sandbox (picloud.scripting), on one core.

Prints the median of several rounds of:
- invocations per second of a compiled hello-world script through the async
  driver (target >= 20,000/s), next to the peer: calling the same function in
  a bare lupa runtime (no sandbox, no driver);
- invocations per second of a script making 10 yielding SDK calls (target
  >= 5,000/s);
- the slowdown of the CPU hook on a tight loop: sandboxed invocation vs the
  same loop in a bare lupa runtime (target <= 2.5x);
- the memory of one idle app runtime: process RSS growth per runtime over
  many runtimes, and its Lua heap (target <= 1 MB).

Usage: python bench/bench_scripting.py [--rounds 5] [--seconds 1]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from lupa import lua54

from picloud import event_loop
from picloud.scripting import (
    AppInfo,
    AppRuntime,
    InvocationContext,
    JSONValue,
    RequestData,
    ScriptLimits,
)

HELLO = 'return "hello"'
TEN_CALLS = 'local c = kv.collection("c")\nfor i = 1, 10 do c:get("k") end\nreturn "ok"'
LOOP = "local x = 0\nfor i = 1, 3000000 do x = x + i % 7 end\nreturn x"

CTX = InvocationContext(
    execution_id="bench",
    app=AppInfo(id="app", slug="app", name="Bench"),
    request=RequestData(
        method="GET",
        path="/hello",
        query={"q": "1"},
        headers={"host": "app.example", "user-agent": "bench", "accept": "*/*"},
    ),
)


async def sdk(op: str, args: list[JSONValue]) -> JSONValue:
    return "value"


async def rate(fn: Callable[[], Awaitable[Any]], seconds: float) -> tuple[float, float]:
    """Calls per second of ``fn`` over about ``seconds``: per second of wall
    clock, and per second of this process's CPU time (what one core does when
    the machine is shared)."""
    n, batch = 0, 200
    started, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        for _ in range(batch):
            await fn()
        n += batch
    return n / (time.perf_counter() - started), n / (time.process_time() - cpu)


def sync_rate(fn: Callable[[], Any], seconds: float) -> tuple[float, float]:
    n, batch = 0, 1000
    started, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        for _ in range(batch):
            fn()
        n += batch
    return n / (time.perf_counter() - started), n / (time.process_time() - cpu)


def bare_lupa() -> Any:
    return lua54.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)


async def throughput(seconds: float) -> dict[str, float]:
    rt = AppRuntime("bench")
    hello = rt.compile("hello", HELLO)
    ten = rt.compile("ten", TEN_CALLS)
    bare_hello = bare_lupa().eval("function() return 'hello' end")
    out: dict[str, float] = {}
    for name, (wall, cpu) in (
        ("hello", await rate(lambda: rt.invoke(hello, CTX, sdk), seconds)),
        ("bare_lupa_call", sync_rate(bare_hello, seconds)),
        ("ten_sdk_calls", await rate(lambda: rt.invoke(ten, CTX, sdk), seconds)),
    ):
        out[f"{name}_per_s"] = wall
        out[f"{name}_per_cpu_s"] = cpu
    return out


async def hook_slowdown() -> dict[str, float]:
    """CPU seconds of a 3M-iteration loop: bare lupa vs a sandboxed invocation."""
    rt = AppRuntime("loop", ScriptLimits(max_instructions=10**10, timeout_ms=60_000))
    loop = rt.compile("loop", LOOP)
    bare = bare_lupa().eval(f"function() {LOOP} end")
    started = time.process_time()
    bare()
    bare_s = time.process_time() - started
    started = time.process_time()
    await rt.invoke(loop, CTX, sdk)
    hooked_s = time.process_time() - started
    return {
        "loop_bare_cpu_s": bare_s,
        "loop_sandbox_cpu_s": hooked_s,
        "hook_slowdown": hooked_s / bare_s,
    }


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def idle_memory(count: int = 200) -> dict[str, float]:
    gc.collect()
    before = rss_bytes()
    runtimes = [AppRuntime(f"app{i}") for i in range(count)]
    gc.collect()
    after = rss_bytes()
    lua_heap = statistics.mean(rt.memory_bytes() for rt in runtimes)
    for rt in runtimes:
        rt.close()
    return {
        "idle_rss_per_runtime_kb": (after - before) / count / 1024,
        "idle_lua_heap_kb": lua_heap / 1024,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {}
    memory = idle_memory()  # first, before the heap holds anything else
    for _ in range(args.rounds):
        for key, value in (await throughput(args.seconds)).items():
            samples.setdefault(key, []).append(value)
        for key, value in (await hook_slowdown()).items():
            samples.setdefault(key, []).append(value)
    targets = {
        "hello_per_s": ">= 20000",
        "hello_per_cpu_s": ">= 20000",
        "ten_sdk_calls_per_s": ">= 5000",
        "ten_sdk_calls_per_cpu_s": ">= 5000",
        "hook_slowdown": "<= 2.5",
        "idle_rss_per_runtime_kb": "<= 1024",
    }
    print(f"median of {args.rounds} rounds (pid {os.getpid()}, one core):")
    for key, values in samples.items():
        print(f"  {key:28s} {statistics.median(values):12.2f}   {targets.get(key, '')}")
    for key, value in memory.items():
        print(f"  {key:28s} {value:12.2f}   {targets.get(key, '')}")


if __name__ == "__main__":
    event_loop.run(main())
