"""A caller that waits longer than PICLOUD_SYNC_TIMEOUT_MS gets a 504 at once,
and the execution it gave up on is recorded as abandoned."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from picloud.http.ingress import EXECUTION_HEADER
from tests.http.helpers import Api, make_app, make_route

pytestmark = [pytest.mark.ray, pytest.mark.server, pytest.mark.shared_server]

SYNC_TIMEOUT_S = 0.4
SPIN_S = 1.5
SLOW = f"""
local started = os.clock()
while os.clock() - started < {SPIN_S} do end
return "late"
"""


@pytest.fixture(scope="module")
def module_overrides() -> dict[str, Any]:
    return {
        "sync_timeout_ms": int(SYNC_TIMEOUT_S * 1000),
        "script_timeout_ms": 10_000,
        "script_max_instructions": 2_000_000_000,
    }


async def executions_of(api: Api, slug: str) -> dict[str, dict[str, Any]]:
    status, page = await api.call("GET", f"/api/v1/admin/apps/{slug}/executions")
    assert status == 200, page
    return {item["id"]: item for item in page["items"]}


async def test_a_caller_timeout_is_a_504_and_an_abandoned_execution(api: Api) -> None:
    await make_app(api, "slow")
    await make_route(api, "slow", SLOW, "GET", "/")
    await make_route(api, "slow", 'return "fast"', "GET", "/fast", name="fast")

    started = time.monotonic()
    status, body = await api.call("GET", "/apps/slow/")
    waited = time.monotonic() - started

    assert status == 504, body
    assert body["error"]["code"] == "timeout"
    assert f"{SYNC_TIMEOUT_S:g}s" in body["error"]["message"]
    execution_id = body["error"]["execution_id"]
    assert api.last_headers[EXECUTION_HEADER] == execution_id
    assert SYNC_TIMEOUT_S <= waited < SPIN_S  # answered at the timeout, not the end

    # The script still runs to its end; then the app answers again, and its
    # execution log shows the run the caller gave up on as abandoned.
    deadline = time.monotonic() + 15
    record: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        record = (await executions_of(api, "slow")).get(execution_id)
        if record is not None and record["abandoned"]:
            break
        await asyncio.sleep(0.2)
    assert record is not None, "the abandoned run is missing from the log"
    assert record["abandoned"] is True
    assert record["status"] == "ok"
    assert record["duration_ms"] >= SPIN_S * 1000 * 0.9

    status, body = await api.call("GET", "/apps/slow/fast")
    assert (status, body) == (200, "fast")
