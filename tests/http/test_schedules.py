"""Schedule triggers over a real server: firings as events, ctx.event, and
one catch-up run (not a burst) for the times missed while PiCloud was down."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from picloud.server import Server
from tests.http.helpers import (
    Api,
    create_identity,
    eventually,
    make_app,
    make_script,
    server_settings,
)

pytestmark = [pytest.mark.ray, pytest.mark.server]

EVERY_2S = "* * * * * */2"
HANDLER = """
kv.collection("fired"):set(ctx.event.scheduled_at, {
  source = ctx.event.source, attempt = ctx.attempt, trigger = ctx.event.trigger_id,
})
"""
FAST = {"delivery_wake_interval_ms": 200}


async def fired(api: Api, slug: str) -> dict[str, Any]:
    _, page = await api.call("GET", f"/api/v1/admin/apps/{slug}/kv/fired?limit=1000")
    return {item["key"]: item["value"] for item in page["items"]}


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


async def _schedule(api: Api, slug: str) -> dict[str, Any]:
    await make_app(api, slug)
    script = await make_script(api, slug, HANDLER, name="tick")
    status, trigger = await api.call(
        "POST",
        f"/api/v1/admin/apps/{slug}/triggers/schedule",
        {"script_id": script["id"], "cron": EVERY_2S, "timezone": "Europe/Paris"},
    )
    assert status == 201, trigger
    made: dict[str, Any] = trigger
    return made


async def test_a_schedule_fires_on_its_times(server: Server, api: Api) -> None:
    trigger = await _schedule(api, "clock")
    assert (trigger["kind"], trigger["cron"], trigger["timezone"]) == (
        "schedule",
        EVERY_2S,
        "Europe/Paris",
    )
    assert trigger["next_fire_at"]

    async def twice() -> bool:
        return len(await fired(api, "clock")) >= 2

    await eventually(twice, within=20)
    runs = await fired(api, "clock")
    for stamp, value in runs.items():
        assert value == {"source": "schedule", "attempt": 1, "trigger": trigger["id"]}
        moment = when(stamp)
        assert moment.second % 2 == 0
        assert moment.microsecond == 0
    _, listed = await api.call("GET", "/api/v1/admin/apps/clock/triggers")
    [record] = listed["items"]
    assert record["last_fired_at"] is not None
    assert when(record["next_fire_at"]) > when(record["last_fired_at"])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"cron": "not a cron"}, "cron"),
        ({"cron": "* * * * *", "timezone": "Nowhere/City"}, "time zone"),
        ({"cron": "* * * * *", "ops": ["set"]}, "ops"),
        ({}, "cron"),
    ],
)
async def test_a_bad_schedule_is_refused(
    server: Server, api: Api, body: dict[str, Any], fragment: str
) -> None:
    await api.call("POST", "/api/v1/admin/apps", {"slug": "badclock", "name": "b"})
    script = await make_script(api, "badclock", "return 1", name=f"s{len(body)}x")
    status, answer = await api.call(
        "POST",
        "/api/v1/admin/apps/badclock/triggers/schedule",
        {"script_id": script["id"], **body},
    )
    assert (status, answer["error"]["code"]) == (400, "invalid_input"), answer
    assert fragment in answer["error"]["message"]
    status, answer = await api.call(
        "POST",
        "/api/v1/admin/apps/badclock/triggers/kv",
        {"script_id": script["id"], "cron": "* * * * *"},
    )
    assert status == 400


async def test_times_missed_while_down_give_one_catch_up_run(
    database: str, ray_session: None
) -> None:
    first = Server(server_settings(**FAST), database, owns_actors=True)
    await first.start()
    try:
        admin = await create_identity(first, "admin", admin=True)
        async with aiohttp.ClientSession() as session:
            api = Api(session, first.url, admin.bearer, apps_base=first.apps_url)
            await _schedule(api, "downtime")

            async def once() -> bool:
                return len(await fired(api, "downtime")) >= 1

            await eventually(once, within=20)
    finally:
        await first.stop()
    before = await _fired_in(database)
    await asyncio.sleep(7)  # three or four times of the schedule pass unseen
    second = Server(server_settings(**FAST), database, owns_actors=True)
    await second.start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, second.url, admin.bearer, apps_base=second.apps_url)
            await _after_restart(api, before)
    finally:
        await second.stop()


async def _fired_in(database: str) -> set[str]:
    import asyncpg  # noqa: PLC0415  # only this test reads the projection itself

    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch("SELECT key FROM kv_entries WHERE collection = 'fired'")
    finally:
        await conn.close()
    return {r["key"] for r in rows}


async def _after_restart(api: Api, before: set[str]) -> None:
    async def caught_up() -> bool:
        return len(await fired(api, "downtime")) > len(before)

    await eventually(caught_up, within=30)
    await asyncio.sleep(0.5)
    after = await fired(api, "downtime")
    new = sorted(set(after) - before, key=when)
    # The catch-up is the latest missed time alone: the missed ones before it
    # (2 s apart, a few of them while the server was down) never run.
    gaps = [(when(b) - when(a)).total_seconds() for a, b in itertools.pairwise(new)]
    last_before = max(before, key=when)
    assert (when(new[0]) - when(last_before)).total_seconds() >= 6, (before, new)
    assert all(gap == 2 for gap in gaps), new
