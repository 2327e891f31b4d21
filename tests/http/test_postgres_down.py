"""Postgres down under a running server: every request answers 503 at once
(never a hang, a 500 or a driver's words), /healthz names the cause, and the
server recovers by itself once the supervised Postgres is back.

A Postgres of the test's own (the session's is shared by every test): its
postmaster is killed with SIGKILL, and only then is it supervised, so the
outage lasts as long as the test needs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any

import pytest

from picloud.server import Server
from picloud.store import EmbeddedPostgres
from tests.helpers import public_temp_dir
from tests.http.helpers import Api, make_app, make_route, server_settings

pytestmark = [pytest.mark.ray, pytest.mark.server]

UNAVAILABLE = {
    "code": "store_unavailable",
    "message": "the database is unavailable; retry",
}
WRITE = 'kv.collection("w"):set(ctx.request.params.key, true) return {ok = true}'
ANSWER_WITHIN_S = 1.0


@pytest.fixture
def postgres() -> Iterator[EmbeddedPostgres]:
    home = public_temp_dir("picloud-test-down-")
    embedded = EmbeddedPostgres(home, cleanup_mode="delete")
    try:
        yield embedded
    finally:
        embedded.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
async def server(
    postgres: EmbeddedPostgres, ray_session: None
) -> AsyncIterator[Server]:
    server = Server(server_settings(), postgres.start(), owns_actors=True)
    await server.start()
    yield server
    await server.stop()


async def timed(call: Awaitable[tuple[int, Any]]) -> tuple[int, Any, float]:
    started = time.monotonic()
    status, body = await call
    return status, body, time.monotonic() - started


def assert_unavailable(api: Api, status: int, body: Any, took: float) -> None:
    assert status == 503, body
    assert {k: body["error"][k] for k in UNAVAILABLE} == UNAVAILABLE
    assert api.last_headers["Retry-After"].isdigit()
    assert took < ANSWER_WITHIN_S, took


async def until_ok(call: Any, within: float) -> float:
    """Seconds until ``call()`` answers 200 (every answer meanwhile is a 503)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        status, body = await call()
        if status == 200:
            return time.monotonic() - started
        assert status == 503, body
        await asyncio.sleep(0.1)
    raise AssertionError(f"no 200 within {within}s")


@pytest.mark.timeout(180)
async def test_postgres_down_answers_503_at_once_and_healthz_names_the_cause(
    postgres: EmbeddedPostgres, api: Api, anon: Api
) -> None:
    await make_app(api, "down")
    await make_route(api, "down", WRITE, "POST", "/w/{key}")
    assert (await anon.call("POST", "/apps/down/w/before"))[0] == 200

    old_pid = postgres.pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)

    causes = []
    for _ in range(50):  # the backends notice the postmaster's death in a moment
        status, health, took = await timed(anon.call("GET", "/healthz"))
        assert status in (200, 503), health
        assert took < ANSWER_WITHIN_S, took
        assert health["ray"]["ok"] is True
        causes.append(health["postgres"].get("error"))
        if causes[-1] == "unreachable: connection refused":
            break
        await asyncio.sleep(0.02)
    assert causes[-1] == "unreachable: connection refused", causes
    assert status == 503
    assert health["postgres"]["ok"] is False
    assert health["status"] == "degraded"

    status, body, took = await timed(anon.call("POST", "/apps/down/w/during"))
    assert_unavailable(anon, status, body, took)
    status, body, took = await timed(api.call("GET", "/api/v1/admin/apps"))
    assert_unavailable(api, status, body, took)
    status, body, took = await timed(
        api.call("PUT", "/api/v1/admin/apps/down/kv/w/admin", True)
    )
    assert_unavailable(api, status, body, took)

    supervisor = asyncio.create_task(postgres.supervise())
    try:
        await until_ok(lambda: anon.call("POST", "/apps/down/w/after"), within=60)
        for _ in range(600):  # the restart's own bookkeeping follows
            if postgres.restarts:
                break
            await asyncio.sleep(0.05)
    finally:
        supervisor.cancel()
    assert postgres.restarts == 1
    assert postgres.pid not in (None, old_pid)
    status, health = await anon.call("GET", "/healthz")
    assert status == 200, health
    status, page = await api.call("GET", "/api/v1/admin/apps/down/kv/w?limit=10")
    assert status == 200, page
    assert {item["key"] for item in page["items"]} == {"before", "after"}
