"""`picloud replay` against a real server: random programs of commands through
the real API (hypothesis, bounded), then the rebuild equals the live
projections, and the state as of each moment equals what the API showed then."""

from __future__ import annotations

import io
import itertools
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from picloud.cli._replay import replay
from picloud.server import Server
from tests.http.helpers import Api, make_app, make_route, make_script

pytestmark = [pytest.mark.ray, pytest.mark.server]

APPS = "/api/v1/admin/apps"
Command = tuple[Any, ...]
_programs = itertools.count()

names = st.sampled_from(["a", "b"])
keys = st.sampled_from(["k0", "k1", "k2", "k3"])
# Text without NUL: the API refuses a NUL in a value (400), which is not the
# program this test means to run.
texts = st.text(st.characters(exclude_characters="\x00"), max_size=3)
values = st.one_of(st.integers(-5, 5), texts, st.just({"x": [1, 2]}))
commands = st.one_of(
    st.tuples(st.just("kv_put"), names, keys, values),
    st.tuples(st.just("kv_delete"), names, keys),
    st.tuples(st.just("doc_create"), names, values),
    st.tuples(st.just("doc_update"), st.integers(0, 5), values),
    st.tuples(st.just("doc_delete"), st.integers(0, 5)),
    st.tuples(st.just("call"), keys),
    st.tuples(st.just("script"), st.sampled_from(["s0", "s1"]), st.integers(0, 2)),
    st.tuples(st.just("route"), st.integers(0, 3)),
    st.tuples(st.just("trigger_write"), keys, values),
    st.tuples(st.just("moment")),
)


def draw_programs(count: int) -> list[list[Command]]:
    """``count`` random programs: hypothesis draws them; the test runs them."""
    programs: list[list[Command]] = []

    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(commands, min_size=3, max_size=12))
    def collect(program: list[Command]) -> None:
        programs.append(program)

    collect()
    return programs


class Program:
    """Runs one program on its own two apps: ``main`` (every command, no
    trigger: its moments are exact) and ``side`` (a KV trigger's app)."""

    def __init__(self, api: Api, n: int) -> None:
        self.api = api
        self.main = f"p{n}"
        self.side = f"p{n}-side"
        self.docs: list[tuple[str, str]] = []
        self.moments: list[tuple[int, dict[str, Any]]] = []

    async def setup(self) -> None:
        for slug in (self.main, self.side):
            await make_app(self.api, slug)
        await make_script(
            self.api,
            self.main,
            "local M = {}\nfunction M.v() return 1 end\nreturn M",
            "lib",
            kind="module",
        )
        await make_route(
            self.api,
            self.main,
            'local lib = require("lib") local c = kv.collection("calls")\n'
            "local k = ctx.request.params.k\n"
            "c:set(k, (c:get(k) or 0) + lib.v()) return {}",
            "POST",
            "/inc/{k}",
            name="inc",
        )
        handler = await make_script(
            self.api,
            self.side,
            'kv.collection("audit"):set(ctx.event.key, ctx.event.value or "gone")'
            " return {}",
            "audit",
        )
        status, _ = await self.api.call(
            "POST",
            f"{APPS}/{self.side}/triggers/kv",
            {"script_id": handler["id"], "collection": "watched"},
        )
        assert status == 201

    async def ok(self, method: str, path: str, body: Any = None, *codes: int) -> Any:
        status, answer = await self.api.call(method, path, body)
        assert status in (codes or (200,)), (method, path, answer)
        return answer

    async def run(self, command: Command) -> None:  # noqa: C901  # a branch per command
        app = f"{APPS}/{self.main}"
        match command:
            case ("kv_put", name, key, value):
                await self.ok("PUT", f"{app}/kv/{name}/{key}", value)
            case ("kv_delete", name, key):
                await self.ok("DELETE", f"{app}/kv/{name}/{key}", None, 204, 404)
            case ("doc_create", name, value):
                doc = await self.ok("POST", f"{app}/docs/{name}", {"v": value}, 201)
                self.docs.append((name, doc["id"]))
            case ("doc_update", n, value) if self.docs:
                name, doc_id = self.docs[n % len(self.docs)]
                path = f"{app}/docs/{name}/{doc_id}"
                await self.ok("PUT", path, {"v": value}, 200, 404)
            case ("doc_delete", n) if self.docs:
                name, doc_id = self.docs[n % len(self.docs)]
                await self.ok("DELETE", f"{app}/docs/{name}/{doc_id}", None, 204, 404)
            case ("call", key):
                await self.ok("POST", f"/apps/{self.main}/inc/{key}")
            case ("script", name, variant):
                await self._script(name, variant)
            case ("route", n):
                await self._route(n)
            case ("trigger_write", key, value):
                await self.ok("PUT", f"{APPS}/{self.side}/kv/watched/{key}", value)
            case ("moment",):
                await self.moment()

    async def _script(self, name: str, variant: int) -> None:
        status, found = await self.api.call("GET", f"{APPS}/{self.main}/scripts")
        existing = {s["name"]: s["id"] for s in found["items"]}
        source = f"return {{variant = {variant}}}"
        if name in existing:
            status, _ = await self.api.call(
                "PUT", f"/api/v1/admin/scripts/{existing[name]}", {"source": source}
            )
            assert status == 200
        else:
            await make_script(self.api, self.main, source, name)

    async def _route(self, n: int) -> None:
        found = await self.ok("GET", f"{APPS}/{self.main}/routes")
        mine = [r for r in found["items"] if r["path"].startswith("/r")]
        if mine and n % 2:
            await self.api.call("DELETE", f"/api/v1/admin/routes/{mine[0]['id']}")
            return
        script = await make_script(
            self.api, self.main, "return {}", f"r{next(_programs)}"
        )
        await self.api.call(
            "POST",
            f"/api/v1/admin/scripts/{script['id']}/routes",
            {"method": "GET", "path": f"/r{n}/{next(_programs)}"},
        )

    async def moment(self) -> None:
        """What the KV and docs APIs show now, with the app's position now."""
        shown = await self.shown()
        status, state = await self.api.call("GET", f"{APPS}/{self.main}/state")
        assert status == 200, state
        self.moments.append((state["as_of"], shown))

    async def shown(self) -> dict[str, Any]:
        app = f"{APPS}/{self.main}"
        kv, docs = {}, {}
        for name in ("a", "b", "calls"):
            page = await self.ok("GET", f"{app}/kv/{name}?limit=1000")
            kv.update({(name, i["key"]): i["value"] for i in page["items"]})
            page = await self.ok("GET", f"{app}/docs/{name}?limit=1000")
            docs.update({(name, i["id"]): i["data"] for i in page["items"]})
        return {"kv": kv, "docs": docs}

    async def as_of(self, position: int) -> dict[str, Any]:
        status, state = await self.api.call(
            "GET", f"{APPS}/{self.main}/state?as_of={position}"
        )
        assert status == 200, state
        return {
            "kv": {(e["collection"], e["key"]): e["value"] for e in state["kv"]},
            "docs": {(d["collection"], d["id"]): d["data"] for d in state["docs"]},
        }


@pytest.mark.timeout(900)
async def test_random_programs_rebuild_equal_to_live_and_as_of_equals_what_was_shown(
    server: Server, api: Api
) -> None:
    programs = draw_programs(15)
    assert len(programs) == 15
    for n, commands in enumerate(programs):
        program = Program(api, n)
        await program.setup()
        for command in commands:
            await program.run(command)
        await program.moment()
        for position, shown in program.moments:
            assert await program.as_of(position) == shown, (commands, position)
        out = io.StringIO()
        assert await replay(server.dsn, server.settings, out=out), out.getvalue()
        assert "equals the live projections" in out.getvalue()
    position = program.moments[0][0]
    out = io.StringIO()
    same = await replay(
        server.dsn, server.settings, app=program.main, as_of=position, out=out
    )
    assert same, out.getvalue()


async def test_replay_reports_a_projection_that_lost_its_way(
    server: Server, api: Api
) -> None:
    await make_app(api, "tampered")
    await api.call("PUT", f"{APPS}/tampered/kv/c/k", {"n": 1})
    conn = await asyncpg.connect(server.dsn)
    try:
        await conn.execute("UPDATE kv_entries SET value = '{\"n\": 2}'")
        await conn.execute("UPDATE users SET password_hash = 'tampered-hash'")
    finally:
        await conn.close()
    out = io.StringIO()
    assert not await replay(server.dsn, server.settings, out=out)
    report = out.getvalue()
    assert "kv_entries: live 1 rows, rebuilt 1" in report
    assert '"n":2' in report.replace(" ", "")
    assert "users:" in report
    assert "tampered-hash" not in report  # the differences are redacted too
    assert "differs from" in report
