"""What each run's record keeps of its request and response, and what-if at
the actor: beside its queue, on a runtime the watchdog watches, and what it
can and cannot run again."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec

from picloud.actors.app_actor import AppActor, app_stream
from picloud.actors.invoker import Invoker
from picloud.actors.protocol import Done, HttpReply, Reply
from picloud.config import KIB, Settings
from picloud.domain.commands import AddRoute, Invoke, SaveScript, WhatIf
from picloud.domain.redaction import REDACTED
from picloud.domain.what_if import WhatIfAnswer
from picloud.events.app import InvocationRecorded, RequestRecord
from picloud.scripting import CurrentInvocation, Watchdog
from picloud.store import AppStore, EventLog
from tests.actors.helpers import make_actor, make_app

ECHO = """
local r = ctx.request
local size = tonumber(r.query.size or "0")
return {status = 201, headers = {["Set-Cookie"] = "sid=s3cret", ["X-Kept"] = "yes"},
        body = {auth = r.headers.authorization, pad = string.rep("x", size)}}
"""


async def ask(actor: AppActor, command: Any) -> Reply:
    return await actor.submit(command, 30.0)


async def route(actor: AppActor, source: str, path: str = "/echo") -> tuple[str, str]:
    saved = await ask(actor, SaveScript(name=path.strip("/"), source=source))
    assert isinstance(saved, Done), saved
    added = await ask(
        actor, AddRoute(script_id=saved.result.id, method="POST", path=path)
    )
    assert isinstance(added, Done), added
    return saved.result.id, added.result.id


def call(route_id: str, n: int, *, body: bytes = b"", size: int = 0) -> Invoke:
    request = RequestRecord(
        method="POST",
        path="/echo",
        query={"size": str(size)},
        headers={"authorization": "Bearer caller-secret", "accept": "*/*"},
        body=body,
    )
    return Invoke(execution_id=f"e{n}", route_id=route_id, request=request)


async def records(actor: AppActor, event_log: EventLog) -> list[InvocationRecorded]:
    """The actor's run records, once it has appended them (a read-only run
    answers before its record is durable)."""
    await actor.settled()
    return [
        r.event
        for r in await event_log.read_stream(actor.stream, 0, 10_000)
        if isinstance(r.event, InvocationRecorded)
    ]


async def test_a_run_record_keeps_its_request_redacted_and_its_response(
    event_log: EventLog,
) -> None:
    app = await make_app(event_log, "recorded")
    actor = make_actor(event_log, app, record_body_max_bytes=1 * KIB)
    await actor.activate()
    _, route_id = await route(actor, ECHO)
    reply = await ask(actor, call(route_id, 1, body=b"small"))
    assert isinstance(reply, HttpReply)
    assert reply.status == 201
    # the script itself saw the caller's header; the record keeps no secret
    assert msgspec.json.decode(reply.body)["auth"] == "Bearer caller-secret"
    big = await ask(actor, call(route_id, 2, body=b"b" * 2 * KIB, size=2 * KIB))
    assert isinstance(big, HttpReply)
    await actor.close()
    small_run, big_run = await records(actor, event_log)
    assert small_run.request is not None
    assert small_run.request.headers == {"authorization": REDACTED, "accept": "*/*"}
    assert small_run.request.body == b"small"
    response = small_run.response
    assert response is not None
    assert response.status == 201
    assert response.headers["Set-Cookie"] == REDACTED
    assert response.headers["X-Kept"] == "yes"
    assert response.body is not None
    assert b"caller-secret" in response.body  # what the script chose to answer
    assert (response.size, response.sha256) == (len(response.body), None)
    # over the bound: no request kept, the response as its size and digest
    assert big_run.request is None
    assert big_run.response is not None
    assert big_run.response.body is None
    assert big_run.response.size == len(big.body)
    assert big_run.response.sha256 is not None
    assert len(big_run.response.sha256) == 64


async def test_with_recording_off_a_sync_run_cannot_be_run_again(
    event_log: EventLog,
) -> None:
    app = await make_app(event_log, "unrecorded")
    actor = make_actor(event_log, app, record_requests=False)
    await actor.activate()
    script_id, route_id = await route(actor, ECHO)
    assert isinstance(await ask(actor, call(route_id, 1)), HttpReply)
    [run] = await records(actor, event_log)
    assert (run.request, run.response) == (None, None)
    done = await ask(
        actor,
        WhatIf(script_id=script_id, source=ECHO, from_position=0, to_position=10**9),
    )
    await actor.close()
    assert isinstance(done, Done), done
    answer: WhatIfAnswer = done.result
    assert (answer.runs, answer.not_run, answer.changed) == (0, 1, 0)
    [item] = answer.items
    assert item.new is None
    assert item.note is not None
    assert "PICLOUD_RECORD_REQUESTS" in item.note
    assert item.original.response is None
    assert item.original.status == "ok"


async def test_a_what_if_runs_beside_the_queue(event_log: EventLog) -> None:
    app = await make_app(event_log, "beside")
    with ThreadPoolExecutor(2) as executor:
        actor = make_actor(event_log, app, executor=executor)
        await actor.activate()
        script_id, route_id = await route(actor, "return {}")
        for n in range(3):
            assert isinstance(await ask(actor, call(route_id, n)), HttpReply)
        await actor.settled()
        version = actor.version
        last = (await event_log.read_stream(app_stream(app.id), 0, 100))[-1].position
        slow = "local x = 0 for i = 1, 2e7 do x = x + i end return {x = x}"
        what_if = asyncio.ensure_future(
            ask(
                actor,
                WhatIf(
                    script_id=script_id, source=slow, from_position=0, to_position=last
                ),
            )
        )
        await asyncio.sleep(0.05)
        live = await ask(actor, call(route_id, 99))
        assert isinstance(live, HttpReply)
        assert not what_if.done()  # the live request did not wait for it
        done = await what_if
        await actor.close()
    assert isinstance(done, Done), done
    assert done.result.runs == 3
    assert actor.version == version + 1  # the live run's record, nothing else


async def test_the_dry_runtime_is_watched_by_the_hosts_watchdog(
    event_log: EventLog,
) -> None:
    app = await make_app(event_log, "watched")
    settings = Settings(
        script_timeout_ms=100,
        script_hard_deadline_grace_ms=100,
        script_max_memory_bytes=64 * 1024 * 1024,
    )
    overruns: list[CurrentInvocation] = []
    killed = threading.Event()
    watchdog = Watchdog(overruns.append, interval_s=0.02, kill=killed.set)
    watchdog.start()
    actor = AppActor(
        app,
        store=AppStore(event_log, app.id),
        settings=settings,
        invoker=Invoker(app, settings),
        watchdog=watchdog,
    )
    try:
        await actor.activate()
        script_id, route_id = await route(actor, "return {}")
        assert isinstance(await ask(actor, call(route_id, 1)), HttpReply)
        # one C call the Lua hook cannot interrupt, past the hard deadline
        stuck = 'local s = string.rep("ab", 4e6) return #s:gsub(".", "%0%0")'
        await ask(
            actor,
            WhatIf(
                script_id=script_id, source=stuck, from_position=0, to_position=10**9
            ),
        )
    finally:
        watchdog.stop()
        await actor.close()
    assert killed.is_set()
    # (the test's kill leaves the process up: the watchdog fires on each check)
    assert {(o.app_id, o.execution_id) for o in overruns} == {(app.id, "e1")}
