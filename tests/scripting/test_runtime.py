"""Compiling, invoking, responses, context, errors and isolation."""

from __future__ import annotations

import asyncio

import pytest

from picloud.config import Settings
from picloud.domain.sdk_ops import SDK
from picloud.errors import ScriptRuntimeError, ScriptSyntaxError
from picloud.scripting import (
    AppRuntime,
    RequestData,
    ScriptLimits,
    logs_of,
    validate_source,
)
from tests.scripting.helpers import MemorySdk, Runner, assert_healthy, make_ctx

# -- responses (SPEC.md §1) ------------------------------------------------------------


async def test_string_return_is_text(run: Runner) -> None:
    result = await run('return "hello"')
    assert result.response.status == 200
    assert result.response.headers == {"content-type": "text/plain; charset=utf-8"}
    assert result.response.body == b"hello"
    assert result.value == "hello"


async def test_plain_table_is_json(run: Runner) -> None:
    result = await run("return {a = 1, list = {1, 2, 3}, nested = {x = true}}")
    assert result.response.status == 200
    assert result.response.headers == {"content-type": "application/json"}
    assert result.value == {"a": 1, "list": [1, 2, 3], "nested": {"x": True}}


async def test_response_table_as_given(run: Runner) -> None:
    result = await run(
        "return {status = 201,"
        ' headers = {["X-Id"] = "7", ["Content-Type"] = "text/csv"},'
        ' body = "a,b"}'
    )
    assert result.response.status == 201
    assert result.response.headers == {"X-Id": "7", "Content-Type": "text/csv"}
    assert result.response.body == b"a,b"


async def test_response_table_body_as_json(run: Runner) -> None:
    result = await run("return {status = 404, body = {error = 'nope'}}")
    assert result.response.status == 404
    assert result.response.headers == {"content-type": "application/json"}
    assert result.response.body == b'{"error":"nope"}'
    assert result.value == {
        "status": 404,
        "headers": {"content-type": "application/json"},
        "body": {"error": "nope"},
    }


async def test_a_table_that_only_looks_like_a_response_is_data(run: Runner) -> None:
    assert await run.value("return {status = 'ok'}") == {"status": "ok"}
    assert await run.value("return {headers = 'none', body = 1}") == {
        "headers": "none",
        "body": 1,
    }


async def test_nil_is_204(run: Runner) -> None:
    result = await run("local x = 1")
    assert result.response.status == 204
    assert result.response.body == b""
    assert result.value is None


async def test_binary_body_passes_unchanged(run: Runner) -> None:
    result = await run('return {body = "\\0\\255\\1"}')
    assert result.response.body == b"\x00\xff\x01"


async def test_empty_table_encodes_as_object_and_json_array_as_array(
    run: Runner,
) -> None:
    assert await run.value(
        "return {a = {}, b = json.array(), c = json.array({1})}"
    ) == {
        "a": {},
        "b": [],
        "c": [1],
    }


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("return {status = 99}", "between 100 and 599"),
        ("return {headers = {['X-A'] = 'a\\r\\nb'}}", "invalid response header"),
        ("return function() end", "cannot return a function"),
    ],
)
async def test_bad_responses_are_script_errors(
    run: Runner, source: str, fragment: str
) -> None:
    with pytest.raises(ScriptRuntimeError, match=fragment):
        await run(source, name="resp")


# -- context ---------------------------------------------------------------------------


async def test_ctx_request_and_app(run: Runner) -> None:
    request = RequestData(
        method="POST",
        path="/orders/7",
        params={"id": "7"},
        query={"q": "x"},
        headers={"content-type": "application/json"},
        body=b'{"n": 2, "tags": ["a"]}',
    )
    result = await run(
        "local r = ctx.request\n"
        "return {m = r.method, p = r.path, id = r.params.id, q = r.query.q,"
        " ct = r.headers['content-type'], n = r:json().n, t = r.json().tags[1],"
        " app = ctx.app.slug, depth = ctx.trigger_depth, event = ctx.event == nil}",
        ctx=make_ctx(request=request),
    )
    assert result.value == {
        "m": "POST",
        "p": "/orders/7",
        "id": "7",
        "q": "x",
        "ct": "application/json",
        "n": 2,
        "t": "a",
        "app": "app-a-slug",
        "depth": 0,
        "event": True,
    }


async def test_ctx_event(run: Runner) -> None:
    event = {
        "source": "kv",
        "op": "set",
        "key": "k",
        "value": {"a": None},
        "prev_value": None,
    }
    result = await run(
        "local e = ctx.event\n"
        "return {op = e.op, null = e.prev_value == json.null,"
        " a = e.value.a == json.null,"
        " request = ctx.request == nil}",
        ctx=make_ctx(event=event),
    )
    assert result.value == {"op": "set", "null": True, "a": True, "request": True}


# -- errors ----------------------------------------------------------------------------


async def test_runtime_error_has_name_and_line(run: Runner) -> None:
    with pytest.raises(ScriptRuntimeError) as info:
        await run("local x = 1\nlocal y = nil\nreturn y.z", name="orders")
    assert str(info.value) == "orders:3: attempt to index a nil value (local 'y')"


async def test_error_without_position_gets_the_script_line(run: Runner) -> None:
    with pytest.raises(ScriptRuntimeError) as info:
        await run("\n\nerror('plain', 0)", name="orders")
    assert str(info.value) == "orders:3: plain"


async def test_error_from_library_points_at_the_script(run: Runner) -> None:
    with pytest.raises(ScriptRuntimeError) as info:
        await run("local a = 1\nlocal s = string.rep('x', {})", name="lib")
    message = str(info.value)
    assert message.startswith("lib:2: ")
    assert "sandbox" not in message
    assert "rep" in message


async def test_error_object_table(run: Runner) -> None:
    with pytest.raises(ScriptRuntimeError, match=r"^t:1: custom$"):
        await run("error({message = 'custom'})", name="t")
    with pytest.raises(
        ScriptRuntimeError, match=r"^t:1: error object is a table value$"
    ):
        await run("error({code = 1})", name="t")


async def test_error_message_is_truncated(run: Runner) -> None:
    with pytest.raises(ScriptRuntimeError) as info:
        await run("error(string.rep('x', 100000))")
    assert len(str(info.value)) < 2100


async def test_logs_survive_a_failure(run: Runner) -> None:
    with pytest.raises(ScriptRuntimeError) as info:
        await run("log.info('before', 1)\nlog.warn('still')\nerror('boom')")
    assert [(line.level, line.message) for line in logs_of(info.value)] == [
        ("info", "before 1"),
        ("warn", "still"),
    ]


def test_syntax_error_at_compile(runtime: AppRuntime) -> None:
    with pytest.raises(ScriptSyntaxError) as info:
        runtime.compile("broken", "local x = 1\nlocal = 2\n")
    assert info.value.line == 2
    assert str(info.value).startswith("broken:2: ")


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("x = = 1", 1),
        ("local a = 1\n\nif a then\n", 4),
        ("return 1\nreturn 2", 2),
        ("\x1bLua\x54\x00", 1),
        ("local s = [[unfinished", 1),
    ],
)
def test_validate_source_reports_the_line(source: str, line: int) -> None:
    with pytest.raises(ScriptSyntaxError) as info:
        validate_source("checked", source)
    assert info.value.line == line
    assert str(info.value).startswith(f"checked:{line}: ")


def test_validate_source_accepts_valid_lua() -> None:
    validate_source(
        "ok", "local t = {}\nfor i = 1, 3 do t[i] = i end\nreturn t\n-- done"
    )


def test_validate_source_rejects_bad_names() -> None:
    with pytest.raises(ValueError, match="invalid script name"):
        validate_source("no spaces", "return 1")


def test_a_source_cannot_escape_the_wrapper(runtime: AppRuntime) -> None:
    # Compiled as `function(_ENV, ...) <source> end`: closing it early must
    # not compile, so no code can run when the wrapper is created.
    for source in ["end os.exit() function f()", "end\nreturn 1", "]] end --[["]:
        with pytest.raises(ScriptSyntaxError):
            runtime.compile("inject", source)


# -- compile once, run many; isolation -------------------------------------------------


async def test_thousand_invocations_leak_nothing(runtime: AppRuntime) -> None:
    script = runtime.compile(
        "leaky",
        """
        local seen = {
          global = counter, string_upper = string.upper == nil, mutated = string.mark,
          math_pi = math.pi, json_null = next(json.null) ~= nil,
          ctx_mark = ctx.mark, table_insert = table.insert == nil,
          method = ("x").mark, log = log.info == nil,
          kv = kv.collection == nil, coroutine = coroutine.wrap == nil,
          env_mt = getmetatable(_G) and getmetatable(_G).mark,
        }
        counter = (counter or 0) + 1
        string.upper = nil
        string.mark = true
        math.pi = 3
        rawset(json.null, "x", 1)
        ctx.mark = true
        table.insert = nil
        log.info = nil
        kv.collection = nil
        coroutine.wrap = nil
        local mt = getmetatable(_G)
        if mt then mt.mark = true end
        setmetatable(_G, {__index = function() return "leak" end})
        return seen
        """,
    )
    sdk = Runner(runtime).sdk
    first = None
    for _ in range(1000):
        result = await runtime.invoke(script, make_ctx(), sdk)
        first = first or result.value
        assert result.value == first
    assert first == {
        "string_upper": False,
        "math_pi": pytest.approx(3.141592653589793),
        "json_null": False,
        "table_insert": False,
        "log": False,
        "kv": False,
        "coroutine": False,
    }


async def test_apps_cannot_see_each_other(run: Runner, other: Runner) -> None:
    await run("shared = 'from a'; kv.collection('c'):set('k', 'a-value')")
    assert (
        await other.value("return {shared = shared, v = kv.collection('c'):get('k')}")
        == {}
    )
    assert run.sdk.calls[-1] == ("kv.set", ["c", "k", "a-value", {}])
    assert other.sdk.calls == [("kv.get", ["c", "k"])]
    script = run.runtime.compile("mine", "return 1")
    with pytest.raises(ValueError, match="another runtime"):
        await other.runtime.invoke(script, make_ctx("app-b"), other.sdk)
    await assert_healthy(run, other)


async def test_interleaved_invocations_keep_their_own_state(
    runtime: AppRuntime,
) -> None:
    script = runtime.compile(
        "inter",
        "x = ctx.execution_id\nlocal v = kv.collection('c'):get('k')\n"
        "return {x = x, id = ctx.execution_id}",
    )
    sdk = MemorySdk(delay=0.01)
    ctxs = [make_ctx() for _ in range(5)]
    results = await asyncio.gather(*(runtime.invoke(script, c, sdk) for c in ctxs))
    for c, r in zip(ctxs, results, strict=True):
        assert r.value == {"x": c.execution_id, "id": c.execution_id}


def test_limits_from_settings() -> None:
    settings = Settings(script_max_instructions=7, script_timeout_ms=9)
    limits = ScriptLimits.from_settings(settings)
    assert limits.max_instructions == 7
    assert limits.timeout_ms == 9
    assert ScriptLimits() == ScriptLimits.from_settings(Settings())


def test_memory_and_close(limits: ScriptLimits) -> None:
    rt = AppRuntime("mem", limits, sdk=SDK)
    assert 0 < rt.memory_bytes() < 1 << 20
    rt.close()
    with pytest.raises(ValueError, match="closed"):
        rt.compile("x", "return 1")


async def test_result_reports_instructions_and_time(run: Runner) -> None:
    result = await run("local n = 0 for i = 1, 100000 do n = n + i end return n")
    assert result.value == 5000050000
    assert result.instructions >= 190_000  # two VM instructions per iteration
    assert result.duration_ms > 0
