"""Escapes from the sandbox. Each test is one attack vector of issue 3, shown
to be real against a naive lupa sandbox, and asserts the clean outcome: a
named error (or a harmless result), the process alive, and the next
invocation of the same app and of another app unaffected."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from picloud.domain.sdk_ops import SDK
from picloud.errors import ScriptLimitExceeded, ScriptRuntimeError
from picloud.scripting import AppRuntime, ScriptLimits, _stdlib
from tests.scripting.helpers import MemorySdk, Runner, assert_healthy, make_ctx

# -- globals, load, bytecode -----------------------------------------------------------


async def test_load_without_env_cannot_reach_real_globals(
    run: Runner, other: Runner
) -> None:
    value = await run.value(
        "local f = load('return _G, os, io, debug, package, python, require, load')\n"
        "local g, os_, io_, debug_, package_, python_ = f()\n"
        "return {same = g == _G, os_exit = os_ and os_.exit ~= nil, io = io_ ~= nil,"
        " debug = debug_ ~= nil, package = package_ ~= nil, python = python_ ~= nil}"
    )
    assert value == {
        "same": True,
        "os_exit": False,
        "io": False,
        "debug": False,
        "package": False,
        "python": False,
    }
    await assert_healthy(run, other)


async def test_load_refuses_functions_and_binary_chunks(
    run: Runner, other: Runner
) -> None:
    value = await run.value(
        "local ok, err = pcall(load, function() return 'return 1' end)\n"
        "local f, err2 = load('\\27Lua\\84\\0\\25\\147\\13\\10\\26\\10', 'x', 'b')\n"
        "return {ok = ok, err = err, f = f == nil, err2 = err2}"
    )
    assert value["ok"] is False
    assert "only strings" in value["err"]
    assert value["f"] is True
    assert "binary chunk" in value["err2"]
    await assert_healthy(run, other)


async def test_string_dump_is_gone_also_as_a_method(run: Runner, other: Runner) -> None:
    value = await run.value(
        "local ok1 = pcall(function() return string.dump(print) end)\n"
        "local ok2 = pcall(function() return (''):dump() end)\n"
        'return {a = string.dump == nil, b = ("").dump == nil, ok1 = ok1, ok2 = ok2}'
    )
    assert value == {"a": True, "b": True, "ok1": False, "ok2": False}
    await assert_healthy(run, other)


async def test_dangerous_libraries_are_unreachable(run: Runner, other: Runner) -> None:
    value = await run.value(
        """
        local found = {}
        for _, name in ipairs({"os", "io", "debug", "package", "python",
                               "collectgarbage",
                               "dofile", "loadfile", "warn", "rawequal"}) do
          found[name] = _G[name] ~= nil
        end
        found.os_execute = os.execute ~= nil or os.exit ~= nil or os.getenv ~= nil
        found.require_os_execute = require("os").execute ~= nil
        found.require_io = pcall(require, "io")
        found.require_python = pcall(require, "python")
        found.math_randomseed = math.randomseed ~= nil
        found.string_meta = getmetatable("") ~= nil
        return found
        """
    )
    assert value == {
        "os": True,
        "io": False,
        "debug": False,
        "package": False,
        "python": False,
        "collectgarbage": False,
        "dofile": False,
        "loadfile": False,
        "warn": False,
        "rawequal": True,
        "os_execute": False,
        "require_os_execute": False,
        "require_io": False,
        "require_python": False,
        "math_randomseed": False,
        "string_meta": False,
    }
    await assert_healthy(run, other)


async def test_no_python_object_is_reachable(run: Runner, other: Runner) -> None:
    # Walk everything a script can reach, and what the library hands back.
    value = await run.value(
        """
        local bad, seen = {}, {}
        local function walk(v, path)
          local t = type(v)
          if t == "userdata" or t == "thread" then bad[#bad + 1] = path .. ":" .. t end
          if t == "table" and not seen[v] then
            seen[v] = true
            for k, x in next, v do
              walk(k, path .. ".<key>")
              walk(x, path .. "." .. tostring(k))
            end
            local mt = getmetatable(v)
            if type(mt) == "table" then walk(mt, path .. ".<mt>") end
          end
        end
        for _, lib in ipairs({"string", "table", "math", "utf8", "os", "coroutine",
                              "json",
                              "base64", "hex", "url", "regex", "time", "random", "log",
                              "kv", "docs", "dead_letters"}) do
          walk(_G[lib], lib)
        end
        walk(_G, "_G")
        walk(ctx, "ctx")
        walk(kv.collection("c"), "handle")
        walk(json.decode('{"a": [1, {"b": null}]}'), "decoded")
        walk(url.parse("https://u:p@h:8/x?a=1&a=2#f"), "url")
        walk(regex.match("(?P<x>a)(b)?", "a"), "regex")
        walk(regex.find_all("a", "aa"), "find_all")
        walk({pcall(json.decode, "{")}, "error")
        return {bad = bad, n = #bad}
        """,
        ctx=None,
    )
    assert value == {"bad": {}, "n": 0}
    await assert_healthy(run, other)


async def test_a_failing_host_function_gives_a_string_error(
    runtime: AppRuntime, run: Runner, other: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # If Python raised into Lua, the error value would be the exception object.
    def explode(data: bytes) -> bytes:
        raise RuntimeError("host internals: /secret/path")

    monkeypatch.setattr(_stdlib, "hex_encode", explode)
    value = await run.value(
        "local ok, e = pcall(hex.encode, 'x') return {ok, type(e), e}"
    )
    assert value == [False, "string", "hex.encode: internal error"]
    with pytest.raises(ScriptRuntimeError) as info:
        await run("hex.encode('x')", name="h")
    assert str(info.value) == "h:1: hex.encode: internal error"
    monkeypatch.undo()
    await assert_healthy(run, other)


async def test_python_object_metatable_is_locked(
    runtime: AppRuntime, run: Runner, other: Runner
) -> None:
    # Scripts never get a userdata; should one ever leak, lupa's shared
    # Python-object metatable could be neither read nor replaced, and the
    # string metatable is locked the same way.
    raw = runtime.sandbox.internal[b"raw"]
    assert raw[b"getmetatable"](object()) is False
    assert raw[b"getmetatable"](b"") is False
    value = await run.value(
        "local ok = pcall(setmetatable, '', {})\nreturn {getmetatable('') == nil, ok}"
    )
    assert value == [True, False]
    await assert_healthy(run, other)


# -- the hook and its kill -------------------------------------------------------------


async def test_coroutines_created_inside_coroutines_are_hooked(
    run: Runner, other: Runner
) -> None:
    with pytest.raises(ScriptLimitExceeded) as info:
        await run(
            "local co = coroutine.create(function()\n"
            "  local inner = coroutine.wrap(function() while true do end end)\n"
            "  inner()\n"
            "end)\n"
            "coroutine.resume(co)"
        )
    assert info.value.limit == "instructions"
    await assert_healthy(run, other)


@pytest.mark.parametrize(
    "source",
    [
        "while true do pcall(function() while true do end end) end",
        "while true do\n"
        "  xpcall(function() while true do end end, function(e) return e end)\n"
        "end",
        "while true do\n"
        "  coroutine.resume(coroutine.create(function() while true do end end))\n"
        "end",
        "while true do pcall(coroutine.wrap(function() while true do end end)) end",
        "while true do local ok = pcall(error, 'x') end",
        # the message handler runs after the kill, and is killed as well
        "xpcall(function() while true do end end, function() while true do end end)",
        # a to-be-closed variable's __close runs while the kill unwinds
        "local t <close> =\n"
        "  setmetatable({}, {__close = function() while true do end end})\n"
        "while true do end",
    ],
)
async def test_the_kill_cannot_be_swallowed(
    run: Runner, other: Runner, source: str
) -> None:
    started = time.monotonic()
    with pytest.raises(ScriptLimitExceeded) as info:
        await run(source)
    assert info.value.limit in {"instructions", "time"}
    assert time.monotonic() - started < 3
    await assert_healthy(run, other)


async def test_gc_metamethods_are_refused(run: Runner, other: Runner) -> None:
    value = await run.value(
        "local ok1, e1 =\n"
        "  pcall(setmetatable, {}, {__gc = function() while true do end end})\n"
        "local mt = {__gc = true}\n"
        "local ok2, e2 = pcall(setmetatable, {}, mt)\n"
        "local late = {}\n"
        "setmetatable({}, late)\n"
        "late.__gc = function() while true do end end\n"
        "return {ok1, e1, ok2}"
    )
    assert value[0] is False
    assert "__gc" in value[1]
    assert value[2] is False
    await assert_healthy(run, other)


def test_no_finalizer_runs_at_runtime_close(limits: ScriptLimits) -> None:
    rt = AppRuntime("closing", limits, sdk=SDK)
    script = rt.compile(
        "fin",
        "local late = {}\n"
        "for i = 1, 100 do setmetatable({}, late) end\n"
        "late.__gc = function() while true do end end\n"
        "keep = {pcall(setmetatable, {}, late)}",
    )
    asyncio.run(rt.invoke(script, make_ctx("closing"), MemorySdk()))
    started = time.monotonic()
    rt.close()
    del rt, script
    gc.collect()
    assert time.monotonic() - started < 1


# -- shared state ----------------------------------------------------------------------


async def test_string_metatable_and_libraries_are_per_invocation(
    run: Runner, other: Runner
) -> None:
    await run(
        "string.upper = function() return 'pwned' end\n"
        "string.format = nil\n"
        "local ok = pcall(function() getmetatable('').__index.upper = nil end)\n"
        "json.encode = nil\n"
        "_G.print = nil\n"
    )
    value = await run.value(
        "return {('a'):upper(), string.upper('b'), string.format('%d', 1),"
        " json.encode({1}),"
        " type(print)}"
    )
    assert value == ["A", "B", "1", "[1]", "function"]
    assert await other.value("return ('a'):upper()") == "A"
    await assert_healthy(run, other)


async def test_sdk_handles_are_read_only(run: Runner, other: Runner) -> None:
    value = await run.value(
        """
        local c = kv.collection("mine")
        local ok1, e1 = pcall(function() c.name = "theirs" end)
        local ok2 = pcall(function() c.get = function() return "fake" end end)
        rawset(c, "collection", "theirs")
        local ok3 = pcall(setmetatable, c, {})
        c:set("k", "v")
        return {ok1, e1, ok2, ok3, getmetatable(c)}
        """
    )
    assert value[0] is False
    assert "read-only" in value[1]
    assert value[2] is False
    assert value[3] is False
    assert value[4] is False
    assert run.sdk.calls[-1] == ("kv.set", ["mine", "k", "v", {}])  # no options
    await assert_healthy(run, other)


async def test_sdk_method_called_without_a_handle_is_refused(run: Runner) -> None:
    with pytest.raises(ScriptRuntimeError, match=r"kv\.get: call it as a method"):
        await run("local c = kv.collection('c')\nlocal v = c.get('k')", name="m")
