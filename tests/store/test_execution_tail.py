"""The execution tail's filters over runs and notices (pure: no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from picloud.domain.records import ExecutionNotice, ExecutionRecord
from picloud.store import ExecutionFilter
from picloud.store.execution_tail import matches

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
