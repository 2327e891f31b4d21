"""The SDK bridge: Lua functions that need I/O yield to the async driver,
which awaits the host's handler and resumes the script."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from picloud.domain.names import COLLECTION
from picloud.errors import InvalidInput, ScriptRuntimeError, SdkCallError
from picloud.scripting import JSONValue
from tests.scripting.helpers import MemorySdk, Runner, make_ctx


async def test_sdk_calls_await_without_blocking_the_loop(run: Runner) -> None:
    # The handler sleeps; a ticker on the same loop keeps running meanwhile,
    # and two invocations overlap instead of queueing.
    sdk = MemorySdk(delay=0.1)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.ensure_future(ticker())
    script = run.runtime.compile(
        "sleepy", "local c = kv.collection('c')\nc:set('k', 1)\nreturn c:get('k')"
    )
    started = time.monotonic()
    results = await asyncio.gather(
        *(run.runtime.invoke(script, make_ctx(), sdk) for _ in range(2))
    )
    elapsed = time.monotonic() - started
    task.cancel()
    assert [r.value for r in results] == [1, 1]
    assert elapsed < 0.35  # 2 invocations x 2 calls x 0.1 s, overlapped
    assert ticks >= 10


async def test_kv_operations(run: Runner) -> None:
    value = await run.value(
        """
        local c = kv.collection("users")
        c:set("alice", {age = 30, tags = {"a"}})
        c:set("bob", "plain")
        local listed = c:list({prefix = "a", limit = 10})
        return {get = c:get("alice"), has = c:has("bob"), missing = c:get("nobody"),
                deleted = c:delete("bob"), gone = c:has("bob"), n = #listed.items}
        """
    )
    assert value == {
        "get": {"age": 30, "tags": ["a"]},
        "has": True,
        "deleted": True,
        "gone": False,
        "n": 2,
    }
    assert [op for op, _ in run.sdk.calls] == [
        "kv.set",
        "kv.set",
        "kv.list",
        "kv.get",
        "kv.has",
        "kv.get",
        "kv.delete",
        "kv.has",
    ]
    assert run.sdk.calls[2] == ("kv.list", ["users", {"prefix": "a", "limit": 10}])


async def test_docs_and_dead_letters_reach_the_handler_as_specified(
    run: Runner,
) -> None:
    seen: list[tuple[str, list[JSONValue]]] = []

    async def handler(op: str, args: list[JSONValue]) -> JSONValue:
        seen.append((op, args))
        return {"op": op}

    value = await run.value(
        """
        local d = docs.collection("orders")
        local out = {}
        out[1] = d:create({total = 5})
        out[2] = d:get("id1")
        out[3] = d:find({total = {["$gt"] = 3}, ["$sort"] = "-total", ["$limit"] = 2})
        out[4] = d:find_one({status = json.null})
        out[5] = d:update("id1", {total = 6})
        out[6] = d:delete("id1")
        out[7] = d:list({cursor = "c1", limit = 5})
        out[8] = dead_letters.list({resolved = false})
        out[9] = dead_letters.replay("dl1")
        out[10] = dead_letters.resolve("dl1")
        out[11] = d:list()
        return #out
        """,
        sdk=handler,
    )
    assert value == 11
    assert seen == [
        ("docs.create", ["orders", {"total": 5}]),
        ("docs.get", ["orders", "id1"]),
        (
            "docs.find",
            ["orders", {"total": {"$gt": 3}, "$sort": "-total", "$limit": 2}],
        ),
        ("docs.find_one", ["orders", {"status": None}]),
        ("docs.update", ["orders", "id1", {"total": 6}]),
        ("docs.delete", ["orders", "id1"]),
        ("docs.list", ["orders", {"cursor": "c1", "limit": 5}]),
        ("dead_letters.list", [{"resolved": False}]),
        ("dead_letters.replay", ["dl1"]),
        ("dead_letters.resolve", ["dl1"]),
        ("docs.list", ["orders", {}]),
    ]


async def test_handler_refusal_fails_the_lua_call(run: Runner) -> None:
    async def handler(op: str, args: list[JSONValue]) -> JSONValue:
        raise SdkCallError("collection 'x' is read-only")

    value = await run.value(
        "local ok, e = pcall(function() kv.collection('x'):set('k', 1) end)\n"
        "return {ok, e}",
        sdk=handler,
    )
    assert value == [False, "kv.set: collection 'x' is read-only"]
    with pytest.raises(ScriptRuntimeError) as info:
        await run("\nkv.collection('x'):set('k', 1)", sdk=handler, name="w")
    assert str(info.value) == "w:2: kv.set: collection 'x' is read-only"


async def test_other_handler_exceptions_propagate(run: Runner) -> None:
    async def handler(op: str, args: list[JSONValue]) -> JSONValue:
        raise KeyError("store is down")

    with pytest.raises(KeyError, match="store is down"):
        await run(
            "local ok = pcall(function() kv.collection('x'):get('k') end)", sdk=handler
        )
    assert run.runtime.current is None


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "kv.collection(1)",
            "kv.collection: the collection name must be a string, got number",
        ),
        (
            "kv.collection('')",
            "kv.collection: invalid collection name '': use 1-64 letters, digits,"
            " _ . or -, starting with a letter, digit or _",
        ),
        (
            "docs.collection(('x'):rep(65))",
            "docs.collection: invalid collection name '" + "x" * 65 + "': use 1-64"
            " letters, digits, _ . or -, starting with a letter, digit or _",
        ),
        (
            "kv.collection('.hidden')",
            "kv.collection: invalid collection name '.hidden': use 1-64 letters,"
            " digits, _ . or -, starting with a letter, digit or _",
        ),
        ("kv.collection('c'):get(5)", "kv.get: key must be a string, got number"),
        (
            "kv.collection('c'):set('k', nil)",
            "kv.set: the value must not be nil (use delete)",
        ),
        (
            "kv.collection('c'):set('k', print)",
            "kv.set: cannot encode a function value",
        ),
        (
            "kv.collection('c'):list({limit = -1})",
            "kv.list: limit must be a positive integer",
        ),
        (
            "kv.collection('c'):list('x')",
            "kv.list: options must be a table, got string",
        ),
        (
            "docs.collection('c'):create('x')",
            "docs.create: data must be a table, got string",
        ),
        (
            "docs.collection('c'):update('i')",
            "docs.update: data must be a table, got nil",
        ),
        (
            "dead_letters.replay(nil)",
            "dead_letters.replay: id must be a string, got nil",
        ),
        (
            "kv.collection('c'):get('\\255')",
            "kv.get: the arguments must be valid UTF-8",
        ),
    ],
)
async def test_bad_arguments_are_clear_lua_errors(
    run: Runner, source: str, message: str
) -> None:
    with pytest.raises(ScriptRuntimeError) as info:
        await run(source, name="a")
    assert str(info.value) == f"a:1: {message}"
    assert run.sdk.calls == []


async def test_sdk_calls_from_inside_script_coroutines(run: Runner) -> None:
    value = await run.value(
        """
        local c = kv.collection("c")
        c:set("k", "v")
        local gen = coroutine.wrap(function()
          for i = 1, 3 do coroutine.yield(c:get("k") .. i) end
        end)
        local co = coroutine.create(function(a)
          local b = coroutine.yield(a .. c:get("k"))
          return b .. c:get("k")
        end)
        local _, first = coroutine.resume(co, "x")
        local _, second = coroutine.resume(co, "y")
        local ok, err = pcall(table.sort, {2, 1},
                              function(a, b) return c:get("k") and a < b end)
        return {gen(), gen(), gen(), first, second, ok, err}
        """
    )
    assert value[:6] == ["v1", "v2", "v3", "xv", "yv", False]
    assert "cannot be called from a metamethod, iterator or comparator" in value[6]


async def test_sdk_answers_are_rebuilt_faithfully(run: Runner) -> None:
    run.sdk.answers["kv.get"] = {
        "s": "é",
        "i": 2**62,
        "big": 2**70,
        "f": 1.5,
        "t": True,
        "n": None,
        "l": [1, [2, []], {}],
        "nested": {"k": {"k": "v"}},
    }
    value = await run.value(
        """
        local v = kv.collection("c"):get("k")
        return {v = v, null = v.n == json.null, big = math.type(v.big),
                i = math.type(v.i)}
        """
    )
    assert value["v"]["big"] == float(2**70)
    assert value["v"]["l"] == [1, [2, []], {}]
    assert value["null"] is True
    assert value["i"] == "integer"
    assert value["big"] == "float"


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(name=st.text(alphabet=st.sampled_from("aZ09_.-/ é\0"), max_size=70))
async def test_lua_and_the_host_have_one_collection_name_rule(
    run: Runner, name: str
) -> None:
    quoted = "".join(f"\\{b}" for b in name.encode())
    result = await run(f'return {{pcall(kv.collection, "{quoted}")}}')
    accepted_in_lua = result.value[0]
    try:
        COLLECTION.check(name)
    except InvalidInput:
        accepted_by_host = False
    else:
        accepted_by_host = True
    assert accepted_in_lua == accepted_by_host, name
