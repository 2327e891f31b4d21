"""Schemathesis against the live server's own OpenAPI document.

Every operation of ``/api/v1/openapi.json`` gets positive and negative cases
(hypothesis, seeded: the same cases every run), sent with an instance admin's
API key; positive ones act on a real app, and strings are now and then drawn
from a dictionary of hostile values (NUL first: it is how the 500s were found,
54k requests ago). Every answer must be no server error, a status and content
type the document declares, a body its schema allows, and a refusal (4xx) of
whatever the document calls invalid.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup, ServerError
from schemathesis.openapi.checks import JsonSchemaError, UndefinedStatusCode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

import picloud.http.app  # noqa: F401  # registers every endpoint
from picloud.http._api import ENDPOINTS
from picloud.server import Server
from tests.http.helpers import Api, Identity, make_app, make_route

pytestmark = [pytest.mark.ray, pytest.mark.server, pytest.mark.shared_server]

log = logging.getLogger(__name__)

EXAMPLES = 20
"""Per operation and generation mode: about 2,000 requests, some 35 s on two
cores (the suite's per-test timeout, 2 minutes, bounds the whole run)."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    negative_data_rejection,
]
# A request the document calls invalid must be refused with one of these:
# schemathesis' own list misses 413 and 431 (a body or URL too large).
REFUSALS = [400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429, 431]
# Strings that reached Postgres before (a NUL) and edges of UTF-8, drawn now
# and then in place of generated ones, in every location.
HOSTILE = ["\x00", "a\x00b", "%00", "\x00" * 3, "\u00ff", "\U0010ffff", "..", "/"]
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}},
        "dictionaries": {"hostile": {"values": HOSTILE}},
        "generation": {
            "dictionaries": {"string": {"dictionary": "hostile", "probability": 0.2}}
        },
    }
)
POSITIVE = schemathesis.GenerationMode.POSITIVE
NEGATIVE = schemathesis.GenerationMode.NEGATIVE


@dataclass
class Tally:
    requests: Counter[str] = field(default_factory=Counter)
    """Per operation."""
    failures: list[tuple[str, Failure]] = field(default_factory=list)
    no_negative: list[str] = field(default_factory=list)
    """Operations no value can be invalid for (no parameters, any JSON body)."""
    streams: list[str] = field(default_factory=list)
    """Server-sent event operations, left out: their answer never ends."""

    def count(self, kind: type[Failure]) -> int:
        return sum(isinstance(f, kind) for _, f in self.failures)

    def report(self) -> str:
        shown = "\n".join(
            f"{op}: {f.title}: {f.message[:300]}" for op, f in self.failures[:20]
        )
        return (
            f"{len(self.requests)} operations, {self.requests.total()} requests, "
            f"{self.count(ServerError)} server errors, "
            f"{self.count(JsonSchemaError)} schema violations, "
            f"{self.count(UndefinedStatusCode)} undeclared statuses, "
            f"{len(self.failures)} failures; no negative cases for "
            f"{len(self.no_negative)} operations\n{shown}"
        )


@dataclass
class Fuzz:
    """One run over every operation; blocking (a thread's work)."""

    base: str
    headers: dict[str, str]
    app_id: str
    """A real app: positive cases act on it (see :meth:`fixed`)."""
    tally: Tally = field(default_factory=Tally)
    session: requests.Session = field(default_factory=requests.Session)

    def run(self) -> Tally:
        schema = schemathesis.openapi.from_url(
            f"{self.base}/api/v1/openapi.json", config=CONFIG
        )
        for result in schema.get_all_operations():
            operation = result.ok()  # type: ignore[union-attr]  # an Err raises here
            if _streams(operation):
                # A live tail never ends; its own tests check it (and it
                # answers a bad request as the other operations do).
                self.tally.streams.append(operation.label)
                continue
            fixed = self.fixed(operation)
            self.send(operation.as_strategy(POSITIVE, path_parameters=fixed))
            try:
                self.send(operation.as_strategy(NEGATIVE))
            except hypothesis.errors.Unsatisfiable:
                self.tally.no_negative.append(operation.label)  # nothing to refuse
        return self.tally

    def fixed(self, operation: Any) -> dict[str, str] | None:
        """Positive cases act on the real app, so they get past its lookup into
        the handlers; by id, as a PATCH may change its slug. Deleting it
        would end that, so the app's DELETE draws its own."""
        if "{app}" not in operation.path or operation.label == DELETE_APP:
            return None
        return {"app": self.app_id}

    def send(self, cases: Any) -> None:
        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: report, go on
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=cases)
        def send(case: schemathesis.Case[Any]) -> None:
            response = case.call(
                base_url=self.base,
                session=self.session,
                headers=self.headers,
                timeout=30,
            )
            label = case.operation.label
            self.tally.requests[label] += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as group:
                self.tally.failures += [(label, f) for f in group.exceptions]
            except Failure as failure:
                self.tally.failures.append((label, failure))

        send()


DELETE_APP = "DELETE /api/v1/admin/apps/{app}"


def _streams(operation: Any) -> bool:
    """Whether the operation answers server-sent events (the document says)."""
    ok = operation.definition.raw.get("responses", {}).get("200", {})
    return "text/event-stream" in ok.get("content", {})


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    server: Server, api: Api, shared_admin: Identity
) -> None:
    app = await make_app(api, "fuzz")
    await make_route(api, "fuzz", "return {}", path="/x")
    await api.call("PUT", "/api/v1/admin/apps/fuzz/kv/c/k", {"v": 1})
    await api.call("POST", "/api/v1/admin/apps/fuzz/docs/c", {"v": 1})
    fuzz = Fuzz(server.url, shared_admin.bearer, app["id"])
    tally = await asyncio.to_thread(fuzz.run)
    log.info("schemathesis: %s", tally.report())
    operations = {
        f"{e.method} {e.path}".replace(":.+", "") for e in ENDPOINTS.endpoints
    }
    # Schemathesis leaves out the operation that served it the document: the
    # run began by fetching it.
    operations.remove("GET /api/v1/openapi.json")
    streams = {f"{e.method} {e.path}" for e in ENDPOINTS.endpoints if e.stream}
    assert set(tally.streams) == streams
    assert set(tally.requests) == operations - streams, tally.report()
    assert tally.failures == [], tally.report()
