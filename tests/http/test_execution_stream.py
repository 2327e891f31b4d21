"""The execution log followed live over a real server: new runs arrive, the
filters apply, a resume repeats and skips nothing, the trigger depth limit
shows as a ``skipped`` notice; and ``picloud logs --follow`` as a subprocess
prints a line for a run made while it follows."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from picloud.server import Server
from tests.http.helpers import Api, Identity, make_app, make_route, make_script

pytestmark = [pytest.mark.ray, pytest.mark.server, pytest.mark.shared_server]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def module_overrides() -> dict[str, Any]:
    return {
        "events_tail_heartbeat_s": 1,
        "events_tail_poll_ms": 50,
        "max_trigger_depth": 3,
    }


def stream_url(server: Server, slug: str, query: str = "") -> str:
    return f"{server.url}/api/v1/admin/apps/{slug}/executions/stream?{query}"


async def messages(
    response: aiohttp.ClientResponse, count: int, within: float = 15.0
) -> list[dict[str, Any]]:
    """The next ``count`` messages: ``id``, ``event`` and decoded ``data``."""
    found: list[dict[str, Any]] = []
    fields: dict[str, Any] = {}
    async with asyncio.timeout(within):
        while len(found) < count:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith(":"):
                continue
            if line == "":
                if fields:
                    fields.setdefault("event", "message")
                    fields["data"] = msgspec.json.decode(fields["data"])
                    found.append(fields)
                fields = {}
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
    return found


async def run(api: Api, path: str) -> str:
    """Call a route of an app; the execution id it answered with."""
    status, _ = await api.call("GET", path)
    assert status in (200, 500), status
    return api.last_headers["X-PiCloud-Execution-Id"]


async def test_new_runs_arrive_as_the_list_has_them_and_filters_apply(
    server: Server, api: Api
) -> None:
    await make_app(api, "tail")
    await make_route(api, "tail", 'log.info("hi") return 1', path="/ok", name="ok")
    bad, _ = await make_route(api, "tail", 'error("boom")', path="/bad", name="bad")
    before = await run(api, "/apps/tail/ok")
    queries = ["", "status=error", f"script={bad['id']}", "trigger=route:GET%20/bad"]
    async with contextlib.AsyncExitStack() as stack:
        streams = []
        for query in queries:
            response = await stack.enter_async_context(
                api.session.get(stream_url(server, "tail", query), headers=api.headers)
            )
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/event-stream"
            streams.append(response)
        ok = await run(api, "/apps/tail/ok")
        failed = await run(api, "/apps/tail/bad")
        everything = await messages(streams[0], 2)
        # A run made before the tail opened is not new; ok came before bad,
        # so a filter that let anything else through would show ok first.
        firsts = [(await messages(s, 1))[0] for s in streams[1:]]
    assert before not in {m["data"]["id"] for m in everything}
    assert [m["data"]["id"] for m in everything] == [ok, failed]
    assert {m["event"] for m in everything} == {"message"}
    assert [m["data"]["id"] for m in firsts] == [failed] * 3
    _, listed = await api.call("GET", "/api/v1/admin/apps/tail/executions")
    by_id = {item["id"]: item for item in listed["items"]}
    assert [m["data"] for m in everything] == [by_id[ok], by_id[failed]]
    assert everything[0]["data"]["logs"][0]["message"] == "hi"
    assert "boom" in everything[1]["data"]["error"]


async def test_a_resume_repeats_nothing_and_skips_nothing(
    server: Server, api: Api
) -> None:
    await make_app(api, "resume")
    await make_route(api, "resume", "return 1", path="/r")
    url = stream_url(server, "resume")
    async with api.session.get(url, headers=api.headers) as response:
        made = [await run(api, "/apps/resume/r") for _ in range(3)]
        first = await messages(response, 3)
    assert [m["data"]["id"] for m in first] == made
    # Gone after the first run; a run made while away is delivered on resume.
    made.append(await run(api, "/apps/resume/r"))
    headers = {**api.headers, "Last-Event-ID": first[0]["id"]}
    async with api.session.get(url, headers=headers) as response:
        again = await messages(response, 3)
        made.append(await run(api, "/apps/resume/r"))
        again += await messages(response, 1)
    assert [m["data"]["id"] for m in again] == made[1:]
    # after= is the same place as Last-Event-ID.
    after = f"{url}after={again[-2]['id']}"
    async with api.session.get(after, headers=api.headers) as response:
        assert [m["data"]["id"] for m in await messages(response, 1)] == made[-1:]
    status, body = await api.call(
        "GET", "/api/v1/admin/apps/resume/executions/stream?after=nope"
    )
    assert status == 400, body
    status, body = await api.call(
        "GET", "/api/v1/admin/apps/resume/executions/stream?since=1h"
    )
    assert status == 400, body  # an unknown filter is refused, not ignored


async def test_the_trigger_depth_limit_shows_as_a_skipped_notice(
    server: Server, api: Api
) -> None:
    await make_app(api, "loops")
    loop = await make_script(
        api,
        "loops",
        'local c = kv.collection("loop") c:set("n", (c:get("n") or 0) + 1)',
        name="loop",
    )
    status, trigger = await api.call(
        "POST",
        "/api/v1/admin/apps/loops/triggers/kv",
        {"script_id": loop["id"], "collection": "loop"},
    )
    assert status == 201, trigger
    # Only this script's: the notice names the script whose delivery it skipped.
    url = stream_url(server, "loops", f"script={loop['id']}")
    async with api.session.get(url, headers=api.headers) as response:
        status, _ = await api.call("PUT", "/api/v1/admin/apps/loops/kv/loop/n", 0)
        assert status in (200, 201)
        # depths 1, 2 and 3 run; the delivery at depth 4 is skipped
        got = await messages(response, 4)
    assert [m["event"] for m in got] == ["message"] * 3 + ["skipped"]
    assert {m["data"]["status"] for m in got[:3]} == {"ok"}
    skip = got[3]["data"]
    assert "depth 4 exceeds the limit of 3" in skip["reason"]
    assert skip["script_id"] == loop["id"]
    assert skip["trigger"] == f"trigger:kv:{trigger['id']}"
    assert skip["delivery_id"]


async def _line(process: asyncio.subprocess.Process, within: float = 30.0) -> str:
    assert process.stdout is not None
    async with asyncio.timeout(within):
        line = await process.stdout.readline()
    assert line, "picloud logs ended"
    return line.decode()


async def test_picloud_logs_follow_prints_a_line_per_run(
    server: Server, api: Api, admin: Identity
) -> None:
    await make_app(api, "cli-logs")
    await make_route(api, "cli-logs", "return 1", path="/hello", name="hello")
    await make_route(
        api, "cli-logs", 'error("boom\\nsecond line")', path="/bad", name="bad"
    )
    await run(api, "/apps/cli-logs/hello")
    assert admin.key is not None
    env = {
        **os.environ,
        "PICLOUD_URL": server.url,
        "PICLOUD_API_KEY": admin.key,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "picloud",
        "logs",
        "cli-logs",
        "--follow",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        recent = await _line(process)  # printed once the stream is open
        assert "hello" in recent
        assert "route:GET /hello" in recent
        await run(api, "/apps/cli-logs/bad")
        failed = await _line(process)
        await run(api, "/apps/cli-logs/hello")
        ok = await _line(process)
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(15):
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0
    assert failed.split()[2:6] == ["error", "bad", "route:GET", "/bad"], failed
    assert "boom" in failed
    assert "second line" not in failed  # the first line of the error only
    assert ok.split()[2:6] == ["ok", "hello", "route:GET", "/hello"], ok
