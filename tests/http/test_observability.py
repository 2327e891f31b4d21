"""Observability over a real server: ``/metrics`` (the front door's samples
and its hosts'), the JSON access log, and ``X-Request-Id``."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from picloud.http.ingress import EXECUTION_HEADER
from picloud.logs import log_handler
from picloud.metrics import FRONT_DOOR
from picloud.server import Server
from tests.http.helpers import Api, Identity, eventually, make_app, make_route

pytestmark = [pytest.mark.ray, pytest.mark.server]

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SANE = re.compile(r"^[\x21-\x7e]{1,128}$")
ITEM = "return {status = 200, body = ctx.request.params.id}"


@pytest.fixture
async def api(shared_server: Server, shared_admin: Identity) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(
            session,
            shared_server.url,
            shared_admin.bearer,
            apps_base=shared_server.apps_url,
        )


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the process logs from now on, as PICLOUD_LOG_FORMAT=json writes it."""
    out = io.StringIO()
    handler = log_handler("json", out)
    root, access = logging.getLogger(), logging.getLogger("picloud.access")
    level = access.level
    root.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        access.setLevel(level)


async def scrape(api: Api) -> dict[str, list[tuple[dict[str, str], float]]]:
    """``/metrics`` parsed by Prometheus' own parser: samples by name."""
    status, text = await api.call("GET", "/metrics")
    assert status == 200, text
    assert api.last_headers["Content-Type"].startswith("text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def total(samples: list[tuple[dict[str, str], float]], **labels: str) -> float:
    return sum(v for got, v in samples if labels.items() <= got.items())


async def test_metrics_parse_and_move_with_requests_and_host_runs(api: Api) -> None:
    await make_app(api, "metered")
    await make_route(api, "metered", ITEM, path="/items/{id}")
    before = await scrape(api)
    for n in range(3):
        status, body = await api.call("GET", f"/apps/metered/items/{n}")
        assert (status, body) == (200, str(n))
    after = await scrape(api)

    labels = {"listener": "apps", "app": "metered", "route": "/items/{id}"}
    requests = "picloud_http_requests_total"
    moved = total(after[requests], **labels, status="200") - total(
        before.get(requests, []), **labels, status="200"
    )
    assert moved == 3
    # The route's pattern, never the raw path: no label names an item.
    assert not any(
        "/items/1" in value for got, _ in after[requests] for value in got.values()
    )
    seconds = "picloud_http_request_duration_seconds_count"
    assert total(after[seconds], **labels, process=FRONT_DOOR) >= 3
    # Runs are counted in the host that ran them, and reach the front door's scrape.
    runs = "picloud_executions_total"
    host_runs = [(g, v) for g, v in after[runs] if g["process"] != FRONT_DOOR]
    earlier = [(g, v) for g, v in before.get(runs, []) if g["process"] != FRONT_DOOR]
    assert total(host_runs, status="ok") - total(earlier, status="ok") >= 3
    answered = after["picloud_metrics_hosts"]
    assert total(answered, answered="true") >= 1
    assert total(answered, answered="false") == 0
    assert total(after["picloud_eventlog_append_batch_events_count"]) >= 1


async def test_metrics_need_credentials(api: Api) -> None:
    status, body = await api.call("GET", "/metrics", headers={"Authorization": ""})
    assert status == 401, body


async def test_one_json_access_line_per_request_without_secrets(
    api: Api, shared_admin: Identity, log_lines: io.StringIO
) -> None:
    await make_app(api, "logged")
    await make_route(api, "logged", ITEM, path="/items/{id}")
    sent = {"X-Request-Id": "log-test-1"}
    status, _ = await api.call(
        "GET", "/apps/logged/items/7?token=sekrit-in-query", headers=sent
    )
    assert status == 200
    status, _ = await api.call(
        "GET", "/api/v1/admin/apps/logged", headers={"X-Request-Id": "log-test-2"}
    )
    assert status == 200

    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "picloud.access"]
    app_line = [line for line in access if line["request_id"] == "log-test-1"]
    assert len(app_line) == 1
    line = app_line[0]
    assert RFC3339_Z.match(line["time"]), line["time"]
    assert line["level"] == "INFO"
    assert line["message"] == "GET /apps/logged/items/7 200"
    assert (line["listener"], line["method"], line["status"]) == ("apps", "GET", 200)
    assert (line["app"], line["route"]) == ("logged", "/items/{id}")
    assert line["path"] == "/apps/logged/items/7"
    assert isinstance(line["duration_ms"], float)
    admin_line = [line for line in access if line["request_id"] == "log-test-2"]
    assert len(admin_line) == 1
    assert admin_line[0]["listener"] == "admin"
    assert admin_line[0]["route"] == "/api/v1/admin/apps/{app}"
    assert admin_line[0]["app"] == "logged"
    text = log_lines.getvalue()
    assert "sekrit-in-query" not in text
    assert shared_admin.key is not None
    assert shared_admin.key not in text
    assert "\x1b[" not in text


async def test_request_id_is_echoed_and_kept_with_the_execution(api: Api) -> None:
    await make_app(api, "traced")
    await make_route(api, "traced", ITEM, path="/items/{id}")
    sent = {"X-Request-Id": "trace-0123_abc:xyz"}
    status, _ = await api.call("GET", "/apps/traced/items/1", headers=sent)
    assert status == 200
    assert api.last_headers["X-Request-Id"] == sent["X-Request-Id"]
    execution_id = api.last_headers[EXECUTION_HEADER]
    status, found = await api.call(
        "GET", f"/api/v1/admin/apps/traced/executions/{execution_id}"
    )
    assert status == 200, found
    assert found["execution"]["request_id"] == sent["X-Request-Id"]
    status, page = await api.call("GET", "/api/v1/admin/apps/traced/executions")
    assert status == 200
    listed = {item["id"]: item["request_id"] for item in page["items"]}
    assert listed[execution_id] == sent["X-Request-Id"]
    # Errors of both listeners carry it too.
    status, _ = await api.call("GET", "/apps/traced/nowhere", headers=sent)
    assert status == 404
    assert api.last_headers["X-Request-Id"] == sent["X-Request-Id"]
    status, _ = await api.call("GET", "/api/v1/admin/nothing-here", headers=sent)
    assert status == 404
    assert api.last_headers["X-Request-Id"] == sent["X-Request-Id"]


async def test_every_attempt_of_an_async_run_keeps_the_callers_request_id(
    api: Api,
) -> None:
    await make_app(api, "traced-async")
    failing_once = (
        "local n = kv.collection('t'):get('n') or 0\n"
        "kv.collection('t'):set('n', n + 1)\n"
        "if ctx.attempt == 1 then error('first attempt fails') end\n"
        "return {}"
    )
    await make_route(
        api,
        "traced-async",
        failing_once,
        "POST",
        "/jobs",
        dispatch_mode="async",
        retry={"max_attempts": 3, "base_ms": 10, "max_ms": 20},
    )
    sent = {"X-Request-Id": "async-trace-7"}
    status, _ = await api.call("POST", "/apps/traced-async/jobs", {}, headers=sent)
    assert status == 202
    assert api.last_headers["X-Request-Id"] == sent["X-Request-Id"]
    execution_id = api.last_headers[EXECUTION_HEADER]
    path = f"/api/v1/admin/apps/traced-async/executions/{execution_id}"

    async def both_attempts_ran() -> bool:
        status, found = await api.call("GET", path)
        return status == 200 and len(found["attempts"]) == 2

    await eventually(both_attempts_ran)
    _, found = await api.call("GET", path)
    assert [a["status"] for a in found["attempts"]] == ["error", "ok"]
    assert {a["request_id"] for a in found["attempts"]} == {sent["X-Request-Id"]}


@pytest.mark.parametrize("bad", ["x" * 129, "has space", ""])
async def test_an_insane_request_id_is_replaced(api: Api, bad: str) -> None:
    for path in ("/apps/nobody/x", "/healthz"):
        await api.call("GET", path, headers={"X-Request-Id": bad})
        made = api.last_headers["X-Request-Id"]
        assert made != bad
        assert SANE.match(made), made


async def test_a_request_id_is_made_when_none_is_sent(api: Api) -> None:
    await api.call("GET", "/healthz")
    first = api.last_headers["X-Request-Id"]
    await api.call("GET", "/healthz")
    assert SANE.match(first)
    assert api.last_headers["X-Request-Id"] != first
