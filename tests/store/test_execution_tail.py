"""The execution tail's filters over runs and notices (pure: no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from picloud.domain.records import EventRecord, ExecutionNotice, ExecutionRecord
from picloud.events import Event
from picloud.events.app import (
    AppQuarantined,
    ExecutionAbandoned,
    HostKilled,
    InvocationRecorded,
)
from picloud.events.triggers import DeadLettered, DeliverySkipped
from picloud.store import ExecutionFilter
from picloud.store.execution_tail import item_of, matches

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
RUN = ExecutionRecord(
    id="e1",
    script_id="s1",
    status="ok",
    trigger="route:GET /a",
    started_at=AT,
    duration_ms=1.0,
    error=None,
    logs=[],
    attempt=1,
    abandoned=False,
)
SKIP = ExecutionNotice(
    kind="skipped",
    at=AT,
    reason="trigger depth 9 exceeds the limit of 8: a trigger loop?",
    script_id="s1",
    trigger="trigger:kv:t1",
    delivery_id="d1",
)
ABANDONED = ExecutionNotice(
    kind="abandoned", at=AT, reason="the caller gave up", execution_id="e2"
)


@pytest.mark.parametrize(
    ("where", "run", "skip", "abandoned"),
    [
        (ExecutionFilter(), True, True, True),
        (ExecutionFilter(status="ok"), True, False, False),
        (ExecutionFilter(status="error"), False, True, True),
        (ExecutionFilter(script_id="s1"), True, True, False),
        (ExecutionFilter(script_id="s2"), False, False, False),
        (ExecutionFilter(trigger="route:"), True, False, False),
        (ExecutionFilter(trigger="trigger:kv:"), False, True, False),
        (ExecutionFilter(since=AT), True, True, True),
        (ExecutionFilter(until=AT), False, False, False),
    ],
)
def test_filters_keep_runs_and_the_notices_that_name_a_match(
    where: ExecutionFilter, run: bool, skip: bool, abandoned: bool
) -> None:
    assert [matches(where, RUN), matches(where, SKIP), matches(where, ABANDONED)] == [
        run,
        skip,
        abandoned,
    ]


def _stored(event: Event) -> EventRecord:
    return EventRecord(
        position=1,
        stream=f"app-{event.app_id}",  # type: ignore[attr-defined]  # app events
        version=1,
        type=event.__struct_config__.tag,  # type: ignore[arg-type]  # tagged
        data=msgspec.Raw(msgspec.json.encode(event)),
        meta=msgspec.Raw(b"{}"),
        recorded_at=AT,
    )


def _run(trigger: str, error: str | None = None) -> InvocationRecorded:
    return InvocationRecorded(
        at=AT,
        app_id="a",
        execution_id="e1",
        script_id="s1",
        trigger=trigger,
        status="ok" if error is None else "error",
        started_at=AT,
        duration_ms=2.5,
        error=error,
    )


def test_each_event_becomes_its_run_or_notice() -> None:
    letter = DeadLettered(
        at=AT,
        app_id="a",
        dead_letter_id="l1",
        delivery_id="d1",
        script_id="s1",
        trigger_id="t1",
        source="kv",
        event=msgspec.Raw(b"null"),
        error="boom",
        attempts=3,
        first_attempt_at=AT,
    )
    cases: list[tuple[Event, str, dict[str, object]]] = [
        (
            DeliverySkipped(
                at=AT, app_id="a", delivery_id="d1", reason="depth", script_id="s1"
            ),
            "skipped",
            {"reason": "depth", "script_id": "s1", "delivery_id": "d1"},
        ),
        (
            _run("throttled:GET /x", "over its CPU budget"),
            "throttled",
            {"reason": "over its CPU budget", "trigger": "throttled:GET /x"},
        ),
        (
            ExecutionAbandoned(at=AT, app_id="a", execution_id="e2", reason="504"),
            "abandoned",
            {"execution_id": "e2", "reason": "504"},
        ),
        (
            letter,
            "dead_letter",
            {"dead_letter_id": "l1", "trigger": "trigger:kv:t1", "script_id": "s1"},
        ),
        (
            HostKilled(at=AT, app_id="a", host="h1", execution_id="e3"),
            "host_killed",
            {"execution_id": "e3"},
        ),
        (AppQuarantined(at=AT, app_id="a", host_kills=3), "quarantined", {}),
    ]
    for event, kind, fields in cases:
        notice = item_of(_stored(event), set())
        assert isinstance(notice, ExecutionNotice), event
        assert notice.kind == kind
        assert {k: getattr(notice, k) for k in fields} == fields
    assert "3 attempt" in str(item_of(_stored(letter), set()))
    run = item_of(_stored(_run("route:GET /x")), {"e1"})
    assert isinstance(run, ExecutionRecord)
    assert (run.id, run.trigger, run.abandoned) == ("e1", "route:GET /x", True)
