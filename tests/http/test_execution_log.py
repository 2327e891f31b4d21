"""The execution log over HTTP, when runs answer before their records are durable."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from picloud.http.ingress import EXECUTION_HEADER
from tests.http.helpers import Api, make_app, make_route

pytestmark = [pytest.mark.ray, pytest.mark.server]


async def test_the_list_shows_every_run_that_answered_before_it(
    api: Api, database: str
) -> None:
    await make_app(api, "seen")
    await make_route(api, "seen", 'return "hello"', path="/")
    held = await asyncpg.connect(database)
    try:
        async with held.transaction():
            # Every append of the app waits for this lock: the runs answer
            # (they wrote nothing), their records cannot be appended yet.
            await held.execute("LOCK TABLE events IN EXCLUSIVE MODE")
            ids = []
            for _ in range(5):
                status, body = await asyncio.wait_for(api.call("GET", "/apps/seen/"), 5)
                assert (status, body) == (200, "hello")
                ids.append(api.last_headers[EXECUTION_HEADER])
            listed = asyncio.create_task(
                api.call("GET", "/api/v1/admin/apps/seen/executions")
            )
            await asyncio.sleep(0.3)
            assert not listed.done(), "listed before the records were appended"
    finally:
        await held.close()
    status, log = await listed
    assert status == 200
    assert {entry["id"] for entry in log["items"]} == set(ids)
