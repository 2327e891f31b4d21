"""Resource attacks and the limits. Each test asserts the clean outcome: a
ScriptLimitExceeded naming the limit (or a clear Lua error), in bounded time,
the process alive, and the same app and another app still healthy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from picloud.domain.sdk_ops import SDK
from picloud.errors import ScriptLimitExceeded, ScriptRuntimeError, ScriptTimeout
from picloud.scripting import AppRuntime, RequestData, ScriptLimits, logs_of
from tests.scripting.helpers import (
    MIB,
    TEST_LIMITS,
    MemorySdk,
    Runner,
    assert_healthy,
    make_ctx,
)


async def expect_limit(run: Runner, source: str, limit: str, **kwargs: object) -> None:
    started = time.monotonic()
    with pytest.raises(ScriptLimitExceeded) as info:
        await run(source, **kwargs)  # type: ignore[arg-type]
    assert info.value.limit == limit, str(info.value)
    assert f"the {limit} limit" in str(info.value)
    assert time.monotonic() - started < 5


# -- each limit ------------------------------------------------------------------------


async def test_instructions(run: Runner, other: Runner) -> None:
    await expect_limit(run, "local n = 0\nwhile true do n = n + 1 end", "instructions")
    await assert_healthy(run, other)


async def test_time(other: Runner) -> None:
    limits = ScriptLimits(max_instructions=10**12, timeout_ms=200)
    rt = AppRuntime("slow", limits, sdk=SDK)
    run = Runner(rt)
    started = time.monotonic()
    with pytest.raises(ScriptTimeout) as info:
        await run("while true do end", name="spin")
    assert info.value.limit == "time"
    assert str(info.value) == "spin:1: script exceeded the time limit (200 ms)"
    assert time.monotonic() - started < 1
    await assert_healthy(run, other)


async def test_time_spent_awaiting_the_sdk_counts(other: Runner) -> None:
    rt = AppRuntime("waits", ScriptLimits(timeout_ms=200), sdk=SDK)
    run = Runner(rt)
    run.sdk.delay = 5
    started = time.monotonic()
    with pytest.raises(ScriptTimeout):
        await run("local v = kv.collection('c'):get('k')")
    assert time.monotonic() - started < 1
    run.sdk.delay = 0
    await assert_healthy(run, other)


async def test_memory(run: Runner, other: Runner) -> None:
    await expect_limit(
        run, "local t = {}\nfor i = 1, 1e9 do t[i] = {i, tostring(i)} end", "memory"
    )
    await assert_healthy(run, other)


async def test_memory_cannot_be_caught_and_retried(run: Runner, other: Runner) -> None:
    # A failed allocation is an ordinary Lua error; the soft limit is not.
    await expect_limit(
        run,
        "local keep = {}\n"
        "while true do\n"
        "  pcall(function() keep[#keep + 1] = string.rep('x', 1e6) .. #keep end)\n"
        "end",
        "memory",
    )
    await assert_healthy(run, other)


@pytest.mark.parametrize(
    "catch",
    [
        "local ok = pcall(f)",
        "local ok = xpcall(f, function(e) return e end)",
        "local ok = coroutine.resume(coroutine.create(f))",
        "local ok = pcall(coroutine.wrap(f))",
    ],
)
async def test_a_failed_allocation_cannot_be_caught(
    run: Runner, other: Runner, catch: str
) -> None:
    # One C call asks for more than the hard limit: the allocation fails with
    # an ordinary Lua error, which no catching function may turn into success.
    await expect_limit(
        run,
        "local function f()\n"
        "  local s, t = ('x'):rep(1e6), {}\n"
        "  for i = 1, 100 do t[i] = s end\n"
        "  return table.concat(t)\n"
        "end\n" + catch + "\nreturn 'survived'",
        "memory",
    )
    await assert_healthy(run, other)


async def test_call_depth(run: Runner, other: Runner) -> None:
    await expect_limit(
        run, "local function f(n) return 1 + f(n + 1) end\nreturn f(1)", "call_depth"
    )
    await expect_limit(
        run,
        "local function f() local ok, e = pcall(f) error(e, 0) end\nf()",
        "call_depth",
    )
    await assert_healthy(run, other)


async def test_recursion_below_the_limit_is_fine(run: Runner) -> None:
    assert (
        await run.value(
            "local function f(n) if n == 0 then return 0 end return 1 + f(n - 1) end\n"
            "return f(80)"
        )
        == 80
    )


async def test_log_bytes(run: Runner, other: Runner) -> None:
    with pytest.raises(ScriptLimitExceeded) as info:
        await run(
            "log.info('first')\nwhile true do log.info(string.rep('x', 1000)) end"
        )
    assert info.value.limit == "log_bytes"
    logs = logs_of(info.value)
    assert logs[0].message == "first"
    assert sum(len(line.message) for line in logs) <= TEST_LIMITS.max_log_bytes
    await assert_healthy(run, other)


async def test_a_huge_log_line_never_reaches_python(run: Runner, other: Runner) -> None:
    with pytest.raises(ScriptLimitExceeded) as info:
        await run("log.error(string.rep('x', 10 * 1024 * 1024))")
    assert info.value.limit == "log_bytes"
    assert logs_of(info.value) == []
    await assert_healthy(run, other)


async def test_response_bytes(run: Runner, other: Runner) -> None:
    await expect_limit(run, "return string.rep('x', 600 * 1024)", "response_bytes")
    await expect_limit(
        run,
        "local t = {} for i = 1, 100000 do t[i] = 'abcdefgh' end return t",
        "response_bytes",
    )
    await expect_limit(
        run, "return {body = string.rep('x', 600 * 1024)}", "response_bytes"
    )
    await assert_healthy(run, other)


async def test_value_bytes_at_the_bridge(run: Runner, other: Runner) -> None:
    await expect_limit(
        run, "kv.collection('c'):set('k', string.rep('x', 300 * 1024))", "value_bytes"
    )
    assert run.sdk.calls == []  # the value never reached Python
    await expect_limit(
        run, "return json.encode({string.rep('x', 300 * 1024)})", "value_bytes"
    )
    run.sdk.answers["kv.get"] = "y" * (300 * 1024)
    await expect_limit(run, "return kv.collection('c'):get('k')", "value_bytes")
    del run.sdk.answers["kv.get"]
    await assert_healthy(run, other)


async def test_value_depth(run: Runner, other: Runner) -> None:
    await expect_limit(
        run, "local t = {}\nt.self = t\nreturn json.encode(t)", "value_depth"
    )
    await expect_limit(
        run,
        "local t = {} local c = t for i = 1, 1e5 do c.x = {} c = c.x end return t",
        "value_depth",
    )
    deep: list[object] = []
    cursor = deep
    for _ in range(100_000):
        cursor.append([])
        cursor = cursor[0]  # type: ignore[assignment]
    run.sdk.answers["kv.get"] = deep  # type: ignore[assignment]
    await expect_limit(run, "return kv.collection('c'):get('k')", "value_depth")
    del run.sdk.answers["kv.get"]
    await expect_limit(
        run, "return json.decode(string.rep('[', 100000))", "value_depth"
    )
    await expect_limit(
        run,
        "return json.decode(string.rep('[', 100000) .. string.rep(']', 100000))",
        "value_depth",
    )
    await assert_healthy(run, other)


async def test_deep_event_is_refused_before_running(run: Runner, other: Runner) -> None:
    event: dict[str, object] = {}
    cursor = event
    for _ in range(1000):
        cursor["x"] = {}
        cursor = cursor["x"]  # type: ignore[assignment]
    await expect_limit(run, "return 1", "value_depth", ctx=make_ctx(event=event))
    await assert_healthy(run, other)


# -- C functions that run without the hook ---------------------------------------------


async def test_string_rep_of_nothing_is_instant(run: Runner, other: Runner) -> None:
    started = time.monotonic()
    assert await run.value("return #string.rep('', 2^53) + #(''):rep(1e15, '')") == 0
    assert time.monotonic() - started < 1
    await assert_healthy(run, other)


async def test_string_rep_beyond_memory(run: Runner, other: Runner) -> None:
    await expect_limit(run, "local s = ('x'):rep(2^40)", "memory")
    # 4 * (2^62 + 1) wraps around in integers; the guard computes in floats
    await expect_limit(run, "local s = ('abcd'):rep((1 << 62) + 1)", "memory")
    await expect_limit(run, "local s = string.rep('ab', 1e7, ',')", "memory")
    await assert_healthy(run, other)


@pytest.mark.parametrize(
    "source",
    [
        "table.move({}, 1, math.maxinteger - 1, 2)",
        "table.move({1, 2, 3}, 1, 1e15, 2, {})",
        "local t = setmetatable({}, {__len = function() return 1 << 50 end})\n"
        "table.insert(t, 1, 'x')",
        "local t = setmetatable({}, {__len = function() return 1 << 50 end})\n"
        "table.remove(t, 1)",
    ],
)
async def test_table_functions_over_huge_ranges(
    run: Runner, other: Runner, source: str
) -> None:
    started = time.monotonic()
    with pytest.raises(ScriptLimitExceeded) as info:
        await run(source)
    assert info.value.limit in {"instructions", "time"}
    assert time.monotonic() - started < 5
    await assert_healthy(run, other)


async def test_a_length_that_changes_is_read_once(run: Runner) -> None:
    # C's table.insert reads #t twice; a __len answering 1 and then 2^50
    # would make it shift 2^50 elements.
    started = time.monotonic()
    value = await run.value(
        "local n = 0\n"
        "local t = setmetatable({}, {__len = function()\n"
        "  n = n + 1 return n == 1 and 1 or 1 << 50\n"
        "end})\n"
        "table.insert(t, 1, 'x')\nreturn {n, t[1]}"
    )
    assert value == [1, "x"]
    assert time.monotonic() - started < 1


async def test_table_functions_still_work(run: Runner) -> None:
    value = await run.value(
        """
        local t = {1, 2, 3}
        table.insert(t, 1, 0)
        table.insert(t, 5)
        local removed = table.remove(t, 2)
        local last = table.remove(t)
        local moved = table.move({1, 2, 3}, 1, 3, 2)
        local big = {}
        for i = 1, 10000 do big[i] = i end
        table.insert(big, 1, 0)
        local first = table.remove(big, 1)
        local m = table.move(big, 1, 10000, 3)
        local proxy = setmetatable({}, {__len = function() return 2 end})
        table.insert(proxy, 1, "a")
        table.sort(t, function(a, b) return a > b end)
        return {t = t, removed = removed, last = last, moved = moved, first = first,
                n = #big, m3 = m[3], m10002 = m[10002], p = proxy[1],
                c = table.concat({"a", "b"}, "-")}
        """
    )
    assert value == {
        "t": [3, 2, 0],
        "removed": 1,
        "last": 5,
        "moved": [1, 1, 2, 3],
        "first": 0,
        "n": 10002,
        "m3": 1,
        "m10002": 10000,
        "p": "a",
        "c": "a-b",
    }


@pytest.mark.parametrize(
    "source",
    [
        "local s = string.rep('a', 30000)\nreturn s:find('.-.-.-.-b')",
        "local s = string.rep('a', 30000)\nreturn string.match(s, '(a*)*b')",
        "local s = string.rep('a', 100000)\nreturn s:find('a*b')",
        "local s = string.rep('a', 50000)\nfor w in s:gmatch('(%w+)=(%w+)') do end",
        "local s = string.rep('a', 50000)\nreturn (s:gsub('a-b', ''))",
        "local s = string.rep('a', 40)\n"
        "return s:find(string.rep('a?', 40) .. string.rep('a', 40))",
    ],
)
async def test_catastrophic_patterns_are_refused(
    run: Runner, other: Runner, source: str
) -> None:
    started = time.monotonic()
    with pytest.raises(
        ScriptRuntimeError, match=r"pattern too complex.*use the regex library"
    ):
        await run(source)
    assert time.monotonic() - started < 1
    await assert_healthy(run, other)


async def test_ordinary_patterns_on_large_subjects_work(run: Runner) -> None:
    value = await run.value(
        """
        local s = string.rep("word ", 50000)
        local collapsed = s:gsub("%s+", " ")
        local n = 0
        for w in s:gmatch("%a+") do n = n + 1 end
        return {#collapsed, n, s:find("word", 1, true), ("k=v"):match("(%w+)=(%w+)")}
        """
    )
    assert value == [250000, 50000, 1, "k", "v"]


async def test_big_c_calls_are_charged_to_the_time_limit(other: Runner) -> None:
    # Few instructions, each a C call over a large string: the instruction
    # count alone would let this run for minutes.
    rt = AppRuntime(
        "charged", ScriptLimits(max_instructions=10**12, timeout_ms=300), sdk=SDK
    )
    run = Runner(rt)
    started = time.monotonic()
    with pytest.raises(ScriptTimeout):
        await run(
            "local s = string.rep('x', 4 * 1024 * 1024)\n"
            "while true do local u = s:upper() end"
        )
    assert time.monotonic() - started < 1.5
    await assert_healthy(run, other)


@pytest.mark.parametrize(
    "source",
    [
        # VM instructions whose cost grows with the strings they touch
        'local s = ("x"):rep(1e7)\nwhile true do local t = s .. s .. s end',
        'local a = "x"\nfor i = 1, 24 do a = a .. a end\n'
        "while true do local t = a .. a end",
        'local a = ("x"):rep(2e7)\nlocal b = ("x"):rep(2e7 - 1) .. "y"\n'
        "while true do local r = a < b end",
        'local a = "x"\nfor i = 1, 24 do a = a .. a end\nlocal b = a .. ""\n'
        "while true do local r = a == b end",
    ],
)
async def test_big_string_instructions_are_bounded_by_the_time_limit(
    other: Runner, source: str
) -> None:
    limits = ScriptLimits(
        max_instructions=10**12, timeout_ms=300, max_memory_bytes=96 * MIB
    )
    run = Runner(AppRuntime("strings", limits, sdk=SDK))
    started = time.monotonic()
    with pytest.raises(ScriptTimeout):
        await run(source)
    assert time.monotonic() - started < 1.5
    await assert_healthy(run, other)


async def test_big_c_calls_count_as_instructions(run: Runner, other: Runner) -> None:
    await expect_limit(
        run,
        "local s = string.rep('x', 4 * 1024 * 1024)\n"
        "while true do local u = s:upper() end",
        "instructions",
    )
    await assert_healthy(run, other)


# -- memory at the bridge --------------------------------------------------------------


@pytest.fixture
def tight() -> Iterator[Runner]:
    rt = AppRuntime(
        "tight",
        ScriptLimits(max_memory_bytes=2 * MIB, max_value_bytes=256 * 1024),
        sdk=SDK,
    )
    yield Runner(rt)
    rt.close()


async def test_sdk_answers_when_the_heap_is_full(tight: Runner, other: Runner) -> None:
    tight.sdk.answers["kv.get"] = "z" * (200 * 1024)
    with pytest.raises(ScriptLimitExceeded) as info:
        await tight(
            "local c = kv.collection('c')\nlocal keep = {}\n"
            "while true do keep[#keep + 1] = c:get('k') end"
        )
    assert info.value.limit == "memory"
    del tight.sdk.answers["kv.get"]
    await assert_healthy(tight, other)


async def test_host_value_larger_than_the_heap(tight: Runner, other: Runner) -> None:
    body = b"x" * (12 * MIB)
    with pytest.raises(ScriptLimitExceeded) as info:
        await tight(
            "return #ctx.request.body",
            ctx=make_ctx(
                "tight", request=RequestData(method="POST", path="/", body=body)
            ),
        )
    assert info.value.limit == "memory"
    await assert_healthy(tight, other)


async def test_decoding_into_a_full_heap(tight: Runner, other: Runner) -> None:
    with pytest.raises(ScriptLimitExceeded) as info:
        await tight(
            "local doc = '[' .. string.rep('\"abcdefghijklmnop\",', 9000) .. '1]'\n"
            "local keep = {}\nwhile true do keep[#keep + 1] = json.decode(doc) end"
        )
    assert info.value.limit == "memory"
    await assert_healthy(tight, other)


# -- the SDK bridge's own guards -------------------------------------------------------


async def test_yield_outside_a_coroutine_is_refused(run: Runner, other: Runner) -> None:
    with pytest.raises(
        ScriptRuntimeError, match=r"^y:2: coroutine\.yield called outside"
    ):
        await run("local x = 1\ncoroutine.yield('not an sdk request')", name="y")
    await assert_healthy(run, other)


async def test_cancellation_ends_the_invocation(run: Runner, other: Runner) -> None:
    run.sdk.delay = 10
    task = asyncio.ensure_future(run("local v = kv.collection('c'):get('k')"))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    run.sdk.delay = 0
    assert run.runtime.current is None
    await assert_healthy(run, other)


async def test_non_json_sdk_answer_is_a_host_error(run: Runner, other: Runner) -> None:
    run.sdk.answers["kv.get"] = {"when": object()}  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="cannot be passed to Lua"):
        await run("return kv.collection('c'):get('k')")
    del run.sdk.answers["kv.get"]
    await assert_healthy(run, other)


async def test_memory_sdk_handler_is_not_shared(run: Runner, other: Runner) -> None:
    sdk = MemorySdk()
    await run("kv.collection('c'):set('k', 1)", sdk=sdk)
    assert sdk.calls == [("kv.set", ["c", "k", 1, {}])]
    assert other.sdk.calls == []
