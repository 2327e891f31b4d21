"""require(): the hook for issue 8 — the app's own modules only, loaded once
per invocation, compiled once per version, cycles and depth refused."""

from __future__ import annotations

import pytest

from picloud.errors import ScriptRuntimeError
from tests.scripting.helpers import Modules, Runner, make_ctx

UTIL = """
local M = {}
local helper = require("helper")
function M.greet(name) return "hello " .. helper.upper(name) end
function M.fail() error("from util") end
return M
"""
HELPER = "local H = {}\nfunction H.upper(s) return s:upper() end\nreturn H"


async def test_require_loads_the_apps_module(run: Runner) -> None:
    modules = Modules({"util": (1, UTIL), "helper": (3, HELPER)})
    value = await run.value(
        "local util = require('util')\n"
        "return {util.greet('ann'), require('util') == util}",
        modules=modules,
    )
    assert value == ["hello ANN", True]
    assert modules.lookups == ["util", "helper"]


async def test_module_state_does_not_outlive_the_invocation(run: Runner) -> None:
    modules = Modules(
        {
            "counter": (
                1,
                "local M = {n = 0}\n"
                "function M.bump() M.n = M.n + 1 return M.n end\n"
                "return M",
            )
        }
    )
    script = run.runtime.compile("count", "return require('counter').bump()")
    values = [
        (await run.runtime.invoke(script, make_ctx(), run.sdk, modules)).value
        for _ in range(3)
    ]
    assert values == [1, 1, 1]


async def test_new_version_is_compiled_again(run: Runner) -> None:
    modules = Modules({"m": (1, "return {v = 1}")})
    assert await run.value("return require('m').v", modules=modules) == 1
    modules.modules["m"] = (2, "return {v = 2}")
    assert await run.value("return require('m').v", modules=modules) == 2


async def test_errors_in_modules_name_the_module_line(run: Runner) -> None:
    modules = Modules({"util": (1, UTIL), "helper": (1, HELPER)})
    with pytest.raises(ScriptRuntimeError) as info:
        await run("require('util').fail()", modules=modules, name="caller")
    assert str(info.value) == "util:5: from util"


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ({}, "require: module 'missing' not found"),
        ({"missing": (1, "return 1")}, "require: module 'missing' must return a table"),
        (
            {"missing": (1, "return {")},
            "require: module 'missing' does not compile: missing:1:",
        ),
        (
            {
                "missing": (1, "return require('b')"),
                "b": (1, "return require('missing')"),
            },
            "require: circular import missing -> b -> missing",
        ),
        (
            {
                "missing": (1, "return require('m2')"),
                "m2": (1, "return require('m3')"),
                "m3": (1, "return require('m4')"),
                "m4": (1, "return require('m5')"),
                "m5": (1, "return {}"),
            },
            "require: imports nested deeper than 4",
        ),
    ],
)
async def test_module_errors(
    run: Runner, modules: dict[str, tuple[int, str]], message: str
) -> None:
    with pytest.raises(ScriptRuntimeError) as info:
        await run("local m = require('missing')", modules=Modules(modules))
    assert message in str(info.value)


async def test_module_names_are_checked_before_lookup(run: Runner) -> None:
    modules = Modules({})
    for name in ["sandbox.core", "../x", "", "a" * 65, "has space"]:
        with pytest.raises(ScriptRuntimeError, match="invalid module name"):
            await run(f"require({name!r})", modules=modules)
    assert modules.lookups == []


async def test_standard_library_names_give_the_library(run: Runner) -> None:
    assert (
        await run.value(
            "return require('json') == json and require('string') == string"
        )
        is True
    )


async def test_no_module_source_means_no_modules(run: Runner) -> None:
    with pytest.raises(ScriptRuntimeError, match="module 'util' not found"):
        await run("require('util')")


async def test_each_module_has_its_own_globals_over_a_shared_library(
    run: Runner,
) -> None:
    modules = Modules(
        {
            "ma": (1, 'function helper() return "a" end\nreturn {get = helper}'),
            "mb": (
                1,
                'function helper() return "b" end\n'
                "local M = {}\n"
                "function M.get() return helper() end\n"
                "function M.globals() x_set_by_b = 1 return _G.x_set_by_b end\n"
                "function M.leak() string.leak = 1 end\n"
                "function M.peek() return tostring(string.leak) end\n"
                "function M.detach()\n"
                "  setmetatable(_G, {})\n"
                '  return type(print) .. " " .. string.format("%d", 7)\n'
                "end\n"
                "return M",
            ),
        }
    )
    value = await run.value(
        "local a, b = require('ma'), require('mb')\n"
        "b.leak()\n"
        "return {a.get(), b.get(), b.globals(), x_set_by_b == nil, helper == nil,\n"
        "        string.leak == nil, b.detach(), a.get()}",
        modules=modules,
    )
    assert value == ["a", "b", 1, True, True, True, "function 7", "a"]
    # what a module changed in its libraries is gone in the next invocation
    assert await run.value("return require('mb').peek()", modules=modules) == "nil"
