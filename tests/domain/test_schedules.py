"""Schedule triggers' times, decided from the state (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from picloud.domain.schedules import (
    check_schedule,
    decide_firings,
    due_time,
    next_due,
    next_time,
)
from picloud.errors import InvalidInput
from picloud.events.app_state import evolve_app
from picloud.events.pending import TriggerInfo
from picloud.events.triggers import ScheduleFired
from tests.events.helpers import APP, fold_app, script_saved, trigger_added

ADDED = datetime(2026, 1, 5, 8, 0, 30, tzinfo=UTC)  # a Monday


def schedule(cron: str, tz: str | None = None, **more: object) -> TriggerInfo:
    return TriggerInfo(
        id="t1", kind="schedule", script_id="s1", cron=cron, timezone=tz,
        added_at=ADDED, **more,
    )  # fmt: skip


def test_times_are_read_in_the_zone() -> None:
    daily = schedule("0 9 * * *", "Europe/Paris")
    assert next_time(daily) == datetime(2026, 1, 5, 8, 0, tzinfo=UTC) + timedelta(
        days=1
    )  # 09:00 in Paris is 08:00 UTC in winter; 08:00:30 was already past it
    summer = next_time(daily, datetime(2026, 7, 1, tzinfo=UTC))
    assert summer == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)


def test_missed_times_collapse_into_the_latest() -> None:
    minutely = schedule("* * * * *")
    assert due_time(minutely, ADDED) is None  # nothing after it was added yet
    later = ADDED + timedelta(minutes=10, seconds=5)
    assert due_time(minutely, later) == datetime(2026, 1, 5, 8, 10, tzinfo=UTC)
    fired = minutely.set(last_fired=datetime(2026, 1, 5, 8, 10, tzinfo=UTC))
    assert due_time(fired, later) is None  # that time is fired: never twice
    assert next_time(fired) == datetime(2026, 1, 5, 8, 11, tzinfo=UTC)
    exact = datetime(2026, 1, 5, 8, 11, tzinfo=UTC)
    assert due_time(fired, exact) == exact


def test_firings_are_decided_from_the_state_and_recorded_in_it() -> None:
    state = fold_app(
        [
            script_saved("s1", "h"),
            trigger_added("t1", "s1", kind="schedule", cron="*/5 * * * * 0"),
        ]
    )
    added = state.triggers["t1"].added_at
    assert added is not None
    first = next_due(state)
    assert first is not None
    assert first > added
    assert decide_firings(state, first - timedelta(seconds=1)) == []
    [fired] = decide_firings(state, first + timedelta(minutes=12))
    assert isinstance(fired, ScheduleFired)
    assert fired.trigger_id == "t1"
    state = evolve_app(state, fired)
    assert state.triggers["t1"].last_fired == fired.scheduled_at
    assert decide_firings(state, first + timedelta(minutes=12)) == []
    assert next_due(state) == fired.scheduled_at + timedelta(minutes=5)
    assert state.app_id == APP


@pytest.mark.parametrize(
    ("cron", "tz", "fragment"),
    [
        (None, None, "needs a cron"),
        ("* * *", None, "5 fields"),
        ("61 * * * *", None, "invalid cron"),
        ("* * * * *", "Mars/Olympus", "unknown time zone"),
        ("* * * * * * * *", None, "5 fields"),
    ],
)
def test_a_bad_schedule_is_refused(
    cron: str | None, tz: str | None, fragment: str
) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        check_schedule(cron, tz)
