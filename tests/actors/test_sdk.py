"""The kv and docs SDK from real Lua through a real AppActor on real Postgres."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from picloud.actors.app_actor import app_stream
from picloud.actors.protocol import Failure
from picloud.domain.commands import Invoke
from picloud.events.app import RequestRecord
from picloud.store import EventLog
from tests.actors.helpers import Lua, make_actor, make_app


async def lua_for(event_log: EventLog, slug: str = "data") -> Lua:
    app = await make_app(event_log, slug)
    actor = make_actor(event_log, app)
    await actor.activate()
    return Lua(actor)


async def test_kv_set_get_has_delete_and_list(event_log: EventLog) -> None:
    lua = await lua_for(event_log)
    result = await lua.run("""
        local c = kv.collection("things")
        c:set("a", {n = 1, tags = {"x", "y"}})
        c:set("b", "text")
        c:set("c", 3.5)
        local deleted = c:delete("c")
        local again = c:delete("c")
        return {
          a = c:get("a"), b = c:get("b"), missing = c:get("nope"),
          has_a = c:has("a"), has_c = c:has("c"), deleted = deleted, again = again,
        }
    """)
    assert result == {
        "a": {"n": 1, "tags": ["x", "y"]},
        "b": "text",
        "has_a": True,
        "has_c": False,
        "deleted": True,
        "again": False,
    }
    durable = await lua.run("""
        local c = kv.collection("things")
        local page = c:list{limit = 10}
        local keys = {}
        for i, item in ipairs(page.items) do keys[i] = item.key end
        return {keys = keys, cursor = page.cursor == nil, a = c:get("a").n}
    """)
    assert durable == {"keys": ["a", "b"], "cursor": True, "a": 1}


async def test_kv_list_pages_with_prefix_and_cursor(event_log: EventLog) -> None:
    lua = await lua_for(event_log)
    await lua.run("""
        local c = kv.collection("p")
        for i = 1, 25 do c:set(string.format("user:%02d", i), i) end
        c:set("other", 0)
    """)
    result = await lua.run("""
        local c = kv.collection("p")
        local seen, cursor, pages = {}, nil, 0
        repeat
          local page = c:list{prefix = "user:", limit = 10, cursor = cursor}
          for _, item in ipairs(page.items) do seen[#seen + 1] = item.value end
          cursor = page.cursor
          pages = pages + 1
        until cursor == nil
        return {seen = seen, pages = pages}
    """)
    assert result == {"seen": list(range(1, 26)), "pages": 3}


async def test_kv_bad_input_is_a_clear_lua_error(event_log: EventLog) -> None:
    lua = await lua_for(event_log)
    for source, fragment in [
        ('kv.collection("bad name!"):set("k", 1)', "invalid collection name"),
        ('kv.collection("c"):set("", 1)', "non-empty"),
        ('kv.collection("c"):set(string.rep("k", 2000), 1)', "longer than 1024 bytes"),
        ('kv.collection("c"):set("k", nil)', "nil"),
        ('kv.collection("c"):get(42)', "key must be a string"),
        ('kv.collection("c"):list{limit = 0}', "limit"),
        ('kv.collection("c"):list{cursor = "%%%"}', "cursor"),
    ]:
        error = await lua.fails(source)
        assert fragment in error, (source, error)


async def test_docs_crud_and_envelopes(event_log: EventLog) -> None:
    lua = await lua_for(event_log)
    result = await lua.run("""
        local people = docs.collection("people")
        local ann = people:create{name = "ann", age = 31}
        local bob = people:create{name = "bob", age = 9}
        local got = people:get(ann.id)
        local updated = people:update(bob.id, {name = "bob", age = 10})
        local missing = people:update("nope", {x = 1})
        local removed = people:delete(ann.id)
        return {
          ann_id = ann.id, got_name = got.data.name, has_times = got.created_at ~= nil,
          updated_age = updated.data.age,
          same_created = updated.created_at == bob.created_at,
          missing = missing == nil, removed = removed, gone = people:get(ann.id) == nil,
          again = people:delete(ann.id),
        }
    """)
    assert result["got_name"] == "ann"
    assert result["has_times"] is True
    assert result["updated_age"] == 10
    assert result["same_created"] is True
    assert result["missing"] is True
    assert result["removed"] is True
    assert result["gone"] is True
    assert result["again"] is False
    listed = await lua.run("""
        local page = docs.collection("people"):list{}
        local first = page.items[1].data
        return {n = #page.items, name = first.name, age = first.age}
    """)
    assert listed == {"n": 1, "name": "bob", "age": 10}


async def test_find_is_type_aware_and_reads_its_own_writes(event_log: EventLog) -> None:
    lua = await lua_for(event_log)
    await lua.run("""
        local c = docs.collection("items")
        c:create{n = 10, tier = "gold"}
        c:create{n = "10", tier = "gold"}
        c:create{n = 9, tier = "silver"}
    """)
    result = await lua.run("""
        local c = docs.collection("items")
        c:create{n = 11, tier = "gold"}   -- not yet durable: must be found anyway
        local gt = c:find{n = {["$gt"] = 9}, ["$sort"] = "n"}
        local ns = {}
        for i, d in ipairs(gt) do ns[i] = d.data.n end
        local one = c:find_one{tier = "silver"}
        return {ns = ns, silver = one.data.n, none = c:find_one{tier = "iron"} == nil}
    """)
    assert result == {"ns": [10, 11], "silver": 9, "none": True}


async def test_find_rejects_unsupported_operators(event_log: EventLog) -> None:
    lua = await lua_for(event_log)
    error = await lua.fails('docs.collection("c"):find{["$or"] = {}}')
    assert "$or" in error


async def test_an_error_after_three_writes_commits_nothing(event_log: EventLog) -> None:
    lua = await lua_for(event_log)
    stream = app_stream(lua.actor.app.id)
    before = await event_log.stream_version(stream)
    error = await lua.fails("""
        kv.collection("c"):set("one", 1)
        kv.collection("c"):set("two", 2)
        docs.collection("d"):create{three = 3}
        error("after three writes")
    """)
    assert "after three writes" in error
    rows = await event_log.read_stream(stream, before)
    assert [r.type for r in rows][-1] == "invocation.recorded.v1"
    assert not any(r.type.startswith(("kv.", "doc.")) for r in rows)
    result = await lua.run("""
        return {one = kv.collection("c"):get("one"), n = #docs.collection("d"):find{}}
    """)
    assert result == {"n": 0}
    pool = event_log.pool
    assert await pool.fetchval("SELECT count(*) FROM kv_entries") == 0


async def test_prev_values_are_recorded_in_order(event_log: EventLog) -> None:
    lua = await lua_for(event_log)
    stream = app_stream(lua.actor.app.id)
    await lua.run('kv.collection("c"):set("k", 1)')
    await lua.run(
        'local c = kv.collection("c") c:set("k", 2) c:set("k", 3) c:delete("k")'
    )
    rows = await event_log.read_stream(stream, 0, 1000)
    kv_events: list[Any] = [r.event for r in rows if r.type.startswith("kv.")]
    prevs = [msgspec.json.decode(e.prev) for e in kv_events]
    assert [type(e).__name__ for e in kv_events] == [
        "KvSet",
        "KvSet",
        "KvSet",
        "KvDeleted",
    ]
    assert prevs == [None, 1, 2, 3]


async def test_sets_alone_record_the_stored_prev(event_log: EventLog) -> None:
    """Batches of sets take the one-statement append; prev still comes from
    the store, or from the batch for a key set twice, and a value that looks
    like the event's own members does not confuse it."""
    lua = await lua_for(event_log)
    tricky = {"prev": None, "at": "x", "value": '"prev":null'}
    await lua.run(
        'local c = kv.collection("c") c:set("a", ctx.request.json()) c:set("b", 1)',
        tricky,
    )
    await lua.run("""
        local c = kv.collection("c")
        c:set("a", 2) c:set("a", 3) c:set("b", {x = 1}) c:set("new", true)
    """)
    rows = await event_log.read_stream(app_stream(lua.actor.app.id), 0, 1000)
    sets: list[Any] = [r.event for r in rows if r.type == "kv.set.v1"]
    assert [(e.key, msgspec.json.decode(e.prev)) for e in sets] == [
        ("a", None),
        ("b", None),
        ("a", tricky),
        ("a", 2),
        ("b", 1),
        ("new", None),
    ]
    stored = dict(
        await event_log.pool.fetch("SELECT key, value FROM kv_entries ORDER BY key")
    )
    assert {k: msgspec.json.decode(v) for k, v in stored.items()} == {
        "a": 3,
        "b": {"x": 1},
        "new": True,
    }


async def test_concurrent_increments_count_exactly(event_log: EventLog) -> None:
    lua = await lua_for(event_log)
    route = await lua.route("""
        local c = kv.collection("counters")
        c:set("hits", (c:get("hits") or 0) + 1)
    """)
    replies = await asyncio.gather(*(lua.call(route) for _ in range(1000)))
    assert all(r.status == 204 for r in replies)
    assert await lua.run('return kv.collection("counters"):get("hits")') == 1000
    stored = await event_log.pool.fetchval(
        "SELECT value FROM kv_entries WHERE key = 'hits'"
    )
    assert msgspec.json.decode(stored) == 1000


async def test_apps_cannot_see_each_others_data(event_log: EventLog) -> None:
    first = await lua_for(event_log, "first")
    second = await lua_for(event_log, "second")
    await first.run(
        'kv.collection("shared"):set("k", "first") docs.collection("d"):create{x = 1}'
    )
    result = await second.run("""
        return {
          k = kv.collection("shared"):get("k") or "none",
          n = #docs.collection("d"):find{},
          listed = #kv.collection("shared"):list{}.items,
        }
    """)
    assert result == {"k": "none", "n": 0, "listed": 0}


async def test_a_failed_append_fails_the_replies_and_forgets_speculative_writes(
    event_log: EventLog,
) -> None:
    lua = await lua_for(event_log)
    await lua.run('kv.collection("c"):set("k", "durable")')
    route = await lua.route('kv.collection("c"):set("k", "lost") return 1')
    other = make_actor(event_log, lua.actor.app)  # a second writer steals the stream
    await other.activate()
    await Lua(other).run('kv.collection("c"):set("k", "theirs")')
    reply = await lua.actor.submit(
        Invoke(
            execution_id="z",
            route_id=route,
            request=RequestRecord(method="POST", path="/"),
        ),
        10,
    )
    assert isinstance(reply, Failure)
    assert await lua.run('return {v = kv.collection("c"):get("k")}') == {"v": "theirs"}
