"""Per-app modules through a real AppActor on real Postgres and real Lua:
require chains, every error, isolation between apps, the import graph, and
the shape checked at save and again at load (SPEC.md §5)."""

from __future__ import annotations

from typing import Any

from picloud.actors.app_actor import AppActor, app_stream
from picloud.actors.protocol import Done, Failure
from picloud.domain.commands import AddRoute, AddTrigger, DeleteScript, SaveScript
from picloud.events import EventMeta, utcnow
from picloud.events.app import ScriptSaved
from picloud.scripting.modules import is_known
from picloud.store import EventLog
from picloud.store._scripts import get_script
from tests.actors.helpers import Lua, make_actor, make_app

B1 = 'local B = {}\nfunction B.word() return "one" end\nreturn B'
B2 = 'local B = {}\nfunction B.word() return "two" end\nreturn B'
A = """local b = require("b")
local A = {}
function A.say(n) return b.word() .. "-" .. n end
return A"""
ENDPOINT = 'return {said = require("a").say(1)}'


async def lua_app(event_log: EventLog, slug: str, **settings: Any) -> Lua:
    app = await make_app(event_log, slug)
    actor = make_actor(event_log, app, **settings)
    await actor.activate()
    return Lua(actor)


async def save(actor: AppActor, **command: Any) -> Any:
    reply = await actor.submit(SaveScript(**command), 10)
    assert isinstance(reply, Done), reply
    return reply.result


async def refused(actor: AppActor, command: Any) -> Failure:
    reply = await actor.submit(command, 10)
    assert isinstance(reply, Failure), reply
    return reply


async def test_endpoint_a_b_chain_sees_a_change_to_b_on_the_next_request(
    event_log: EventLog,
) -> None:
    lua = await lua_app(event_log, "chain")
    b = await save(lua.actor, name="b", kind="module", source=B1)
    a = await save(lua.actor, name="a", kind="module", source=A)
    route = await lua.route(ENDPOINT)
    assert (await lua.call(route)).body == b'{"said":"one-1"}'
    changed = await save(lua.actor, script_id=b.id, source=B2)
    assert changed.version == 2
    assert is_known(B2)  # checked at save: the next load parses nothing
    assert (await lua.call(route)).body == b'{"said":"two-1"}'
    # the import graph: recorded with the events, projected, shown both ways
    assert a.imports == ["b"]
    assert a.used_by == []  # the endpoint was saved after a
    shown = await get_script(event_log.pool, a.id)
    assert shown is not None
    assert shown.imports == ["b"]
    assert len(shown.used_by) == 1
    assert shown.used_by[0].startswith("s")
    shown_b = await get_script(event_log.pool, b.id)
    assert shown_b is not None
    assert (shown_b.imports, shown_b.used_by) == ([], ["a"])
    await lua.actor.close()


async def test_require_errors_are_clear(event_log: EventLog) -> None:
    lua = await lua_app(event_log, "errors", module_import_depth_max=2)
    assert "require: module 'nope' not found" in await lua.fails(
        'return require("nope")'
    )
    await save(
        lua.actor, name="c1", kind="module", source='local x = require("c2")\nreturn {}'
    )
    await save(
        lua.actor, name="c2", kind="module", source='local y = require("c1")\nreturn {}'
    )
    assert "require: circular import c1 -> c2 -> c1" in await lua.fails(
        'return require("c1")'
    )
    for n in (1, 2, 3):
        await save(
            lua.actor,
            name=f"d{n}",
            kind="module",
            source=f'local n = require("d{n + 1}")\nreturn {{}}',
        )
    await save(lua.actor, name="d4", kind="module", source="return {}")
    assert "require: imports nested deeper than 2" in await lua.fails(
        'return require("d1")'
    )
    await save(lua.actor, name="notatable", kind="module", source="return 42")
    assert "module 'notatable' must return a table" in await lua.fails(
        'return require("notatable")'
    )
    await save(lua.actor, name="endpoint_x", source="return {}")
    assert "module 'endpoint_x' not found" in await lua.fails(
        'return require("endpoint_x")'
    )
    await lua.actor.close()


async def test_a_module_cannot_reach_another_apps_modules_or_data(
    event_log: EventLog,
) -> None:
    first = await lua_app(event_log, "first")
    second = await lua_app(event_log, "second")
    reader = (
        "local M = {}\n"
        'function M.read() return kv.collection("shared"):get("k") or "none" end\n'
        "return M"
    )
    await save(first.actor, name="secret", kind="module", source="return {x = 1}")
    await save(first.actor, name="reader", kind="module", source=reader)
    await save(second.actor, name="reader", kind="module", source=reader)
    await first.run('kv.collection("shared"):set("k", "first\'s")')
    assert await first.run('return {v = require("reader").read()}') == {"v": "first's"}
    assert await second.run('return {v = require("reader").read()}') == {"v": "none"}
    assert "module 'secret' not found" in await second.fails('return require("secret")')
    await first.actor.close()
    await second.actor.close()


async def test_save_refuses_reserved_names_and_top_level_code(
    event_log: EventLog,
) -> None:
    lua = await lua_app(event_log, "save")
    version = await event_log.stream_version(app_stream(lua.actor.app.id))
    for name in ("json", "kv", "string", "os", "queue"):
        reply = await refused(
            lua.actor, SaveScript(name=name, kind="module", source="return {}")
        )
        assert reply.code == "module_error"
        assert "reserved" in reply.message
    reply = await refused(
        lua.actor,
        SaveScript(
            name="util",
            kind="module",
            source='local M = {}\nkv.collection("x"):set("k", 1)\nreturn M',
        ),
    )
    assert reply.code == "module_shape_error"
    assert reply.message.startswith("util:2: a method call at top level")
    reply = await refused(
        lua.actor, SaveScript(name="util", kind="module", source="return {")
    )
    assert reply.code == "script_syntax_error"
    assert await event_log.stream_version(app_stream(lua.actor.app.id)) == version
    await save(lua.actor, name="json", source="return {}")  # an endpoint may
    await lua.actor.close()


async def test_routes_and_triggers_cannot_target_a_module(event_log: EventLog) -> None:
    lua = await lua_app(event_log, "targets")
    module = await save(lua.actor, name="m", kind="module", source="return {}")
    route = await refused(
        lua.actor, AddRoute(script_id=module.id, method="GET", path="/m")
    )
    trigger = await refused(
        lua.actor, AddTrigger(kind="kv", script_id=module.id, collection="c")
    )
    assert (route.code, trigger.code) == ("invalid_input", "invalid_input")
    assert "module" in route.message
    assert "module" in trigger.message
    await lua.actor.close()


async def test_deleting_an_imported_module_needs_force(event_log: EventLog) -> None:
    lua = await lua_app(event_log, "delete")
    b = await save(lua.actor, name="b", kind="module", source=B1)
    await save(lua.actor, name="a", kind="module", source=A)
    route = await lua.route('return require("b").word()')
    reply = await refused(lua.actor, DeleteScript(script_id=b.id))
    assert reply.code == "conflict"
    assert "imported by a, s" in reply.message
    assert "?force=true" in reply.message
    done = await lua.actor.submit(DeleteScript(script_id=b.id, force=True), 10)
    assert isinstance(done, Done), done
    assert (await lua.call(route)).status == 500
    assert "module 'b' not found" in await lua.last_error()
    # the edges name the module: created again, it is used by the same scripts
    again = await save(lua.actor, name="b", kind="module", source=B2)
    assert again.used_by[0] == "a"
    assert (await lua.call(route)).body == b"two"
    await lua.actor.close()


async def test_a_module_written_to_the_log_directly_is_rejected_at_load(
    event_log: EventLog,
) -> None:
    lua = await lua_app(event_log, "direct")
    util = await save(
        lua.actor,
        name="util",
        kind="module",
        source="local M = {}\nfunction M.n() return 1 end\nreturn M",
    )
    route = await lua.route('return {n = require("util").n()}')
    assert (await lua.call(route)).body == b'{"n":1}'
    await lua.actor.close()
    # bypass the API: a new version with top-level code, straight into the log
    stream = app_stream(lua.actor.app.id)
    bad = 'local M = {}\nM.n = function() return 2 end\nlog.info("ran")\nreturn M'
    event = ScriptSaved(
        at=utcnow(),
        app_id=lua.actor.app.id,
        script_id=util.id,
        name="util",
        kind="module",
        source=bad,
        version=2,
    )
    await event_log.append(
        stream, await event_log.stream_version(stream), [event], EventMeta()
    )
    again = Lua(make_actor(event_log, lua.actor.app))
    await again.actor.activate()
    assert again.actor.state.scripts[util.id].version == 2
    reply = await again.call(route)
    assert reply.status == 500
    error = await again.last_error()
    assert "require: module 'util' is not a valid module: util:2:" in error
    assert "an assignment" in error
    await again.actor.close()
