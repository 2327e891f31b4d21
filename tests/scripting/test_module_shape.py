"""Module shape (SPEC.md §5) with a real Lua parser, the literal import graph,
reserved names, the load-time check and the compiled-module LRU."""

from __future__ import annotations

import time

import pytest

from picloud.domain.sdk_ops import SDK
from picloud.errors import (
    ModuleError,
    ModuleShapeError,
    ScriptLimitExceeded,
    ScriptRuntimeError,
    ScriptSyntaxError,
)
from picloud.scripting import AppRuntime, ModuleSpec
from picloud.scripting.modules import (
    RESERVED_MODULE_NAMES,
    check_module_name,
    check_module_source,
    imports_of,
    is_known,
    source_facts,
)
from tests.scripting.helpers import TEST_LIMITS, MemorySdk, Modules, Runner, make_ctx

GOOD = """
-- every kind of top-level statement a module may hold
local json = require("json")
local helper = require "helper"
require("side")
local LIMIT <const> = 10
local NEG, HALF, NAME, NOTHING = -1, 0.5, [[long]], nil
local M = {a = 1, [2] = "x", nested = {true, false}, f = function() end}
local fmt, upper = string.format, helper.upper
local cfg = require("config").defaults
local declared
local function private(a, ...) goto done; ::done:: return a // 2 end
function M.greet(s) return fmt("%s", upper(s)) .. require("inner").x end
function M:method() while true do break end return self end
;
return M
"""


def test_a_module_with_only_definitions_passes() -> None:
    check_module_source("util", GOOD)


def test_literal_requires_anywhere_are_the_imports() -> None:
    assert imports_of(GOOD) == ["config", "helper", "inner", "side"]
    endpoint = (
        'local a = require("a")\n'
        "local function f(n) return require(n), require('b'), require 'c' end\n"
        "return {require('json'), require('kv'), require('bad name'), require('a')}"
    )
    assert imports_of(endpoint) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("source", "line", "reason"),
    [
        ("local M = {}\nprint('x')\nreturn M", 2, "a function call at top level"),
        ("local M = {}\nM.x = 1\nreturn M", 2, "an assignment"),
        ("x = 1\nreturn {}", 1, "an assignment"),
        ("local M = {}\nfor i = 1, 3 do end\nreturn M", 2, "a for loop"),
        ("local M = {}\nfor k in pairs(M) do end\nreturn M", 2, "a for loop"),
        ("\nif true then end\nreturn {}", 2, "an if statement"),
        ("while false do end\nreturn {}", 1, "a while loop"),
        ("repeat until true\nreturn {}", 1, "a repeat loop"),
        ("do end\nreturn {}", 1, "a do block"),
        ("::top::\nreturn {}", 1, "a label"),
        ("local s = ('x'):rep(3)\nreturn {}", 1, "must be a constant"),
        ("local t = os.time()\nreturn {}", 1, "must be a constant"),
        ("local n = 1 + 2\nreturn {}", 1, "must be a constant"),
        ("local M = {\n  f = g(),\n}\nreturn M", 1, "must be a constant"),
        ("local M = {[k()] = 1}\nreturn M", 1, "must be a constant"),
        ("local c <close> = nil\nreturn {}", 1, "to-be-closed"),
        ("local M = {}\nreturn setmetatable(M, {})", 2, "must return its table"),
        ("local M = {}\nfunction M.f() end", 2, "must end with `return`"),
        ("require('a').setup()\nreturn {}", 1, "a function call at top level"),
    ],
)
def test_top_level_code_is_rejected_with_line_and_reason(
    source: str, line: int, reason: str
) -> None:
    with pytest.raises(ModuleShapeError) as info:
        check_module_source("bad", source)
    assert info.value.line == line
    assert info.value.message.startswith(f"bad:{line}: ")
    assert reason in info.value.message


def test_a_syntax_error_is_lua_s_own_message() -> None:
    with pytest.raises(ScriptSyntaxError) as info:
        check_module_source("broken", "local M = {}\nreturn M +")
    assert info.value.line == 2


def test_lua_the_parser_cannot_read_is_refused_not_trusted() -> None:
    with pytest.raises(ModuleShapeError, match="cannot be checked"):
        check_module_source("hexfloat", "local X = 0x1p4\nreturn {x = X}")
    deep = "local T = " + "{" * 80 + "}" * 80 + "\nreturn {t = T}"
    with pytest.raises(ModuleShapeError, match="nested too deeply"):
        check_module_source("deep", deep)


def test_reserved_names() -> None:
    spec = (
        "log regex random time json base64 hex url kv docs dead_letters http files "
        "pubsub secrets email users queue"
    )
    lua = "_G coroutine debug io math os package string table utf8"
    assert set((spec + " " + lua).split()) == RESERVED_MODULE_NAMES
    for name in ["json", "kv", "string", "queue"]:
        with pytest.raises(ModuleError, match="reserved"):
            check_module_name(name)
    check_module_name("util")


def test_a_source_is_parsed_once_per_process() -> None:
    source = "local M = {}\nfunction M.once() return 'once' end\nreturn M -- unique"
    assert not is_known(source)
    source_facts(source)
    assert is_known(source)
    started = time.perf_counter()
    for _ in range(100):
        check_module_source("once", source)
    assert (time.perf_counter() - started) / 100 < 0.001


# -- at load time, inside the sandbox ------------------------------------------------


async def test_load_rejects_a_module_with_top_level_code(run: Runner) -> None:
    modules = Modules({"bad": (1, "local M = {}\nM.n = kv.collection('x')\nreturn M")})
    with pytest.raises(ScriptRuntimeError) as info:
        await run("return require('bad')", modules=modules)
    assert "require: module 'bad' is not a valid module: bad:2: an assignment" in str(
        info.value
    )


async def test_limits_count_inside_module_code(run: Runner) -> None:
    modules = Modules(
        {"spin": (1, "local M = {}\nfunction M.f() while true do end end\nreturn M")}
    )
    with pytest.raises(ScriptLimitExceeded) as info:
        await run("require('spin').f()", modules=modules)
    assert info.value.limit in {"instructions", "time"}


class Swappable:
    """A module source whose text can change under the same id and version,
    to observe which compiled code the runtime keeps."""

    def __init__(self, names: list[str]) -> None:
        self.text = dict.fromkeys(names, "old")
        self.ids = dict.fromkeys(names, "id1")

    def lookup(self, name: str) -> ModuleSpec | None:
        source = f"return {{v = {self.text[name]!r}}}"
        return ModuleSpec(name=name, version=1, source=source, id=self.ids[name])


async def _v(rt: AppRuntime, modules: Swappable, name: str) -> str:
    script = rt.compile("main", f"return require('{name}').v")
    result = await rt.invoke(script, make_ctx(), MemorySdk(), modules)
    return str(result.value)


async def test_compiled_modules_are_a_bounded_lru() -> None:
    rt = AppRuntime("app-lru", TEST_LIMITS, module_cache_size=2, sdk=SDK)
    modules = Swappable(["a", "b", "c"])
    assert [await _v(rt, modules, n) for n in "ab"] == ["old", "old"]
    assert await _v(rt, modules, "a") == "old"  # a is now the most recent
    await _v(rt, modules, "c")  # evicts b, the least recently used
    modules.text.update(a="new", b="new")
    assert await _v(rt, modules, "a") == "old"  # still compiled
    assert await _v(rt, modules, "b") == "new"  # compiled again
    rt.close()


async def test_a_module_made_again_under_its_name_is_compiled_again() -> None:
    rt = AppRuntime("app-id", TEST_LIMITS, sdk=SDK)
    modules = Swappable(["m"])
    assert await _v(rt, modules, "m") == "old"
    modules.text["m"], modules.ids["m"] = "new", "id2"  # same name and version 1
    assert await _v(rt, modules, "m") == "new"
    rt.close()


class Counted(Swappable):
    """Counts lookups; has a generation, as the actor's module source does."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(names)
        self.generation = 1
        self.lookups = 0

    def lookup(self, name: str) -> ModuleSpec | None:
        self.lookups += 1
        return super().lookup(name)


async def test_an_unchanged_generation_skips_the_lookup() -> None:
    rt = AppRuntime("app-gen", TEST_LIMITS, sdk=SDK)
    modules = Counted(["m"])
    assert [await _v(rt, modules, "m") for _ in range(3)] == ["old"] * 3
    assert modules.lookups == 1
    modules.text["m"], modules.ids["m"] = "new", "id2"
    modules.generation = 2
    assert await _v(rt, modules, "m") == "new"
    assert modules.lookups == 2
    rt.close()
