"""Fair CPU in an app's actor: a script that outruns its slice on the event
loop runs again on a worker thread (its writes once), and an app past its
CPU budget is refused with 429 — once in its execution log, not per request."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import pytest

from picloud.actors import AppActor, Done, Failure, HttpReply
from picloud.domain.commands import AddRoute, Invoke, SaveScript
from picloud.events.app import InvocationRecorded, RequestRecord
from picloud.store import EventLog
from tests.actors.helpers import make_actor, make_app

BUSY_THEN_WRITE = (
    "local x = 0 for i = 1, 2e6 do x = x + i end "
    'kv.collection("c"):set("k", (kv.collection("c"):get("k") or 0) + 1) '
    "return {x = x, cpu = os.clock()}"
)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(2, thread_name_prefix="lua-test")
    yield pool
    pool.shutdown(wait=True)


async def _route(actor: AppActor, source: str, name: str = "s") -> str:
    saved = await actor.submit(SaveScript(name=name, source=source), 10)
    assert isinstance(saved, Done), saved
    added = await actor.submit(
        AddRoute(script_id=saved.result.id, method="POST", path=f"/{name}"), 10
    )
    assert isinstance(added, Done), added
    return str(added.result.id)


async def _call(actor: AppActor, route_id: str, n: int) -> Any:
    request = RequestRecord(method="POST", path="/s")
    return await actor.submit(
        Invoke(execution_id=f"e{n}", route_id=route_id, request=request), 30
    )


async def _runs(event_log: EventLog, actor: AppActor) -> list[InvocationRecorded]:
    await actor.settled()  # runs that wrote nothing answer before their record
    events = await event_log.read_stream(actor.stream)
    return [r.event for r in events if isinstance(r.event, InvocationRecorded)]


async def test_a_script_past_its_slice_runs_again_on_a_thread_writing_once(
    event_log: EventLog, executor: ThreadPoolExecutor
) -> None:
    app = await make_app(event_log)
    actor = make_actor(
        event_log, app, executor=executor, script_inline_slice_ms=2,
        app_cpu_burst_ms=60_000,
    )  # fmt: skip
    await actor.activate()
    route_id = await _route(actor, BUSY_THEN_WRITE)
    for n in range(3):
        reply = await _call(actor, route_id, n)
        assert isinstance(reply, HttpReply), reply
        assert reply.status == 200
    get = await _route(actor, 'return kv.collection("c"):get("k")', "get")
    counted = await _call(actor, get, 9)
    assert isinstance(counted, HttpReply), counted
    assert msgspec.json.decode(counted.body) == 3, "a preempted run wrote twice"
    runs = await _runs(event_log, actor)
    assert all(r.cpu_ms > 2 for r in runs[:3]), [r.cpu_ms for r in runs]
    await actor.close()


async def test_an_app_past_its_cpu_budget_is_refused_and_told_once(
    event_log: EventLog, executor: ThreadPoolExecutor
) -> None:
    app = await make_app(event_log)
    # 600 ms of spinning is well past the 100 ms burst even on a busy
    # machine, where the spinning thread gets a third of a core.
    actor = make_actor(
        event_log, app, executor=executor, script_timeout_ms=600,
        script_max_instructions=10**12, app_cpu_burst_ms=100,
        app_cpu_budget_ms_per_s=50,
    )  # fmt: skip
    await actor.activate()
    route_id = await _route(actor, "while true do end")
    first = await _call(actor, route_id, 0)
    assert isinstance(first, HttpReply)
    assert first.status == 500  # the time limit
    refusals = [await _call(actor, route_id, n) for n in range(1, 4)]
    for refusal in refusals:
        assert isinstance(refusal, Failure), refusal
        assert refusal.kind == "TooManyRequests"
        assert refusal.retry_after is not None
        assert refusal.retry_after > 1
        assert "CPU budget" in refusal.message
    runs = await _runs(event_log, actor)
    throttled = [r for r in runs if r.trigger.startswith("throttled:")]
    assert len(throttled) == 1, "one record per episode, not per request"
    assert throttled[0].error is not None
    assert "CPU budget" in throttled[0].error
    await actor.close()
