"""How a delivery runs and what its failure records: backoff, dead letters,
the recursion stop, skips, execution ids and labels."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from picloud.config import Settings
from picloud.domain.access import SCRIPT_DEFAULT, Capability
from picloud.domain.delivery_policy import (
    check_retry,
    effective_retry,
    failure_events,
    granted,
    retry_delay_s,
    retry_of,
    run_execution_id,
    skip_reason,
    trigger_label,
)
from picloud.errors import InvalidInput
from picloud.events.app import RequestRecord, RetryPolicy
from picloud.events.app_state import AppState
from picloud.events.pending import Delivery
from picloud.events.triggers import (
    DeadLettered,
    DeadLetterHandlerFailed,
    RetryScheduled,
)
from tests.events.helpers import (
    APP,
    AT,
    fold_app,
    later,
    route_added,
    script_saved,
    trigger_added,
)

SETTINGS = Settings(
    trigger_retry_base_ms=500,
    trigger_retry_max_ms=8_000,
    trigger_retry_jitter=0.2,
    trigger_retry_max_attempts=4,
    max_trigger_depth=3,
)
NOW = later(100)


def delivery(**fields: object) -> Delivery:
    base = Delivery(
        id="7:t1",
        seq=7,
        source="kv",
        script_id="s1",
        first_attempt_at=AT,
        trigger_id="t1",
        event=msgspec.Raw(b'{"source":"kv","op":"set","key":"k"}'),
        depth=1,
    )
    return msgspec.structs.replace(base, **fields)


def app() -> AppState:
    return fold_app(
        [
            script_saved("s1", "handler"),
            trigger_added("t1", "s1"),
            route_added("r1", "s1", method="POST", path="/jobs/{id}"),
        ]
    )


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311  # a reproducible schedule, not a secret


def bounds(attempt: int, settings: Settings = SETTINGS) -> tuple[float, float]:
    """The delay's range in seconds: base·2^(attempt-2), capped, ± jitter."""
    capped = min(
        settings.trigger_retry_base_ms * 2 ** max(attempt - 2, 0),
        settings.trigger_retry_max_ms,
    )
    spread = capped * settings.trigger_retry_jitter
    return max(0.0, capped - spread) / 1000, (capped + spread) / 1000


# -- the retry schedule --------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "middle"), [(1, 0.5), (2, 0.5), (3, 1.0), (4, 2.0), (6, 8.0), (40, 8.0)]
)
def test_the_delay_doubles_per_attempt_up_to_the_cap(
    attempt: int, middle: float
) -> None:
    exact = msgspec.structs.replace(SETTINGS, trigger_retry_jitter=0.0)
    assert retry_delay_s(attempt, exact, seeded(1)) == middle


@given(attempt=st.integers(1, 80), seed=st.integers())
def test_the_jittered_delay_stays_within_its_bounds(attempt: int, seed: int) -> None:
    low, high = bounds(attempt)
    assert low <= retry_delay_s(attempt, SETTINGS, seeded(seed)) <= high


def test_a_seeded_random_gives_the_same_schedule_and_the_jitter_varies_it() -> None:
    one = [retry_delay_s(3, SETTINGS, seeded(42)) for _ in range(3)]
    assert one == [one[0]] * 3
    rng = seeded(42)
    delays = {retry_delay_s(3, SETTINGS, rng) for _ in range(50)}
    assert len(delays) > 40
    low, high = bounds(3)
    assert min(delays) < 1.0 < max(delays)
    assert low <= min(delays)
    assert max(delays) <= high


def test_full_jitter_never_makes_a_delay_negative() -> None:
    wild = msgspec.structs.replace(SETTINGS, trigger_retry_jitter=1.0)
    rng = seeded(7)
    delays = [retry_delay_s(2, wild, rng) for _ in range(200)]
    assert min(delays) >= 0.0
    assert max(delays) <= 1.0


# -- what a failure records ----------------------------------------------------


def fail(d: Delivery) -> list[object]:
    return list(failure_events(d, "boom", app_id=APP, settings=SETTINGS, now=NOW))


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_a_failure_before_the_last_attempt_schedules_the_next(attempt: int) -> None:
    [event] = fail(delivery(attempt=attempt))
    assert isinstance(event, RetryScheduled)
    assert (event.app_id, event.delivery_id, event.attempt, event.error) == (
        APP,
        "7:t1",
        attempt + 1,
        "boom",
    )
    assert event.at == NOW
    low, high = bounds(attempt + 1)
    waited = (event.due_at - NOW).total_seconds()
    assert low - 1e-6 <= waited <= high + 1e-6


def test_a_failure_of_the_last_attempt_dead_letters_the_delivery_as_it_was() -> None:
    request = RequestRecord(method="POST", path="/jobs/1", body=b"{}")
    d = delivery(
        attempt=4,
        source="route",
        trigger_id=None,
        route_id="r1",
        request=request,
        depth=2,
        first_attempt_at=later(3),
    )
    [event] = fail(d)
    assert isinstance(event, DeadLettered)
    assert (event.delivery_id, event.script_id, event.trigger_id, event.route_id) == (
        "7:t1",
        "s1",
        None,
        "r1",
    )
    assert (event.source, event.event, event.request, event.depth) == (
        "route",
        d.event,
        request,
        2,
    )
    assert (event.error, event.attempts, event.first_attempt_at) == (
        "boom",
        4,
        later(3),
    )
    uuid.UUID(event.dead_letter_id)
    [other] = fail(d)
    assert isinstance(other, DeadLettered)
    assert other.dead_letter_id != event.dead_letter_id


@pytest.mark.parametrize("attempt", [1, 4, 9])
def test_a_dead_letter_handler_failure_only_marks_the_letter(attempt: int) -> None:
    d = delivery(
        id="dl:L1:t2", dead_letter_id="L1", source="dead_letter", attempt=attempt
    )
    [event] = fail(d)
    assert isinstance(event, DeadLetterHandlerFailed)
    assert (event.dead_letter_id, event.delivery_id, event.error) == (
        "L1",
        "dl:L1:t2",
        "boom",
    )


# -- skips ---------------------------------------------------------------------


def test_a_delivery_within_the_depth_limit_to_live_targets_runs() -> None:
    assert skip_reason(delivery(depth=3), app(), SETTINGS) is None
    assert (
        skip_reason(delivery(trigger_id=None, source="route"), app(), SETTINGS) is None
    )


def test_a_delivery_past_the_depth_limit_is_skipped_as_a_loop() -> None:
    reason = skip_reason(delivery(depth=4), app(), SETTINGS)
    assert reason is not None
    assert "depth 4 exceeds the limit of 3" in reason
    # The depth is checked first: even a gone trigger reports the loop.
    assert "depth" in (
        skip_reason(delivery(depth=9, trigger_id="x"), app(), SETTINGS) or ""
    )


def test_a_delivery_of_a_removed_trigger_or_deleted_script_is_skipped() -> None:
    assert skip_reason(delivery(trigger_id="gone"), app(), SETTINGS) == (
        "the trigger was removed"
    )
    assert skip_reason(delivery(script_id="gone"), app(), SETTINGS) == (
        "the script was deleted"
    )
    route = delivery(source="route", trigger_id=None, route_id="r1", script_id="gone")
    assert skip_reason(route, app(), SETTINGS) == "the script was deleted"


# -- execution ids, labels and grants ------------------------------------------


def test_an_async_route_keeps_its_callers_execution_id_then_numbers_retries() -> None:
    d = delivery(source="route", execution_id="e1")
    assert run_execution_id(d) == "e1"
    assert run_execution_id(msgspec.structs.replace(d, attempt=3)) == "e1-3"


def test_a_trigger_run_gets_a_fresh_execution_id_each_attempt() -> None:
    d = delivery()
    one, two = run_execution_id(d), run_execution_id(d)
    assert one != two
    assert uuid.UUID(one).version == 4


def test_labels_name_the_route_or_the_trigger() -> None:
    state = app()
    route = delivery(source="route", trigger_id=None, route_id="r1")
    assert trigger_label(route, state) == "async:POST /jobs/{id}"
    gone = msgspec.structs.replace(route, route_id="gone")
    assert trigger_label(gone, state) == "async:(removed route)"
    assert trigger_label(delivery(), state) == "trigger:kv:t1"
    letter = delivery(source="dead_letter", trigger_id="t9")
    assert trigger_label(letter, state) == "trigger:dead_letter:t9"


def test_a_handler_gets_its_triggers_grant_or_the_default() -> None:
    assert granted(delivery()) == SCRIPT_DEFAULT
    assert granted(delivery(capabilities=())) == frozenset()
    assert granted(delivery(capabilities=("kv:read", "dead_letters:read"))) == {
        Capability.KV_READ,
        Capability.DEAD_LETTERS_READ,
    }
    with pytest.raises(InvalidInput):
        granted(delivery(capabilities=("app:delete",)))


def test_the_default_settings_give_five_attempts_with_half_a_second_to_a_minute() -> (
    None
):
    defaults = Settings()
    assert bounds(2, defaults) == (0.4, 0.6)
    assert bounds(30, defaults) == (48.0, 72.0)
    d = delivery(attempt=defaults.trigger_retry_max_attempts)
    [event] = failure_events(d, "x", app_id=APP, settings=defaults, now=NOW)
    assert isinstance(event, DeadLettered)
    d = delivery(attempt=defaults.trigger_retry_max_attempts - 1)
    [event] = failure_events(d, "x", app_id=APP, settings=defaults, now=NOW)
    assert isinstance(event, RetryScheduled)
    assert event.due_at - NOW <= timedelta(seconds=72)


# -- a route's or trigger's own policy -----------------------------------------------


def test_a_policy_overrides_the_settings_field_by_field() -> None:
    mine = RetryPolicy(max_attempts=2, base_ms=100)
    full = effective_retry(mine, SETTINGS)
    assert (full.max_attempts, full.base_ms) == (2, 100)
    assert (full.max_ms, full.jitter) == (8_000, 0.2)  # left out: the settings'
    exact = RetryPolicy(base_ms=100, jitter=0.0)
    assert retry_delay_s(2, SETTINGS, policy=exact) == 0.1
    assert retry_delay_s(4, SETTINGS, policy=exact) == 0.4
    capped = RetryPolicy(base_ms=100, max_ms=150, jitter=0.0)
    assert retry_delay_s(9, SETTINGS, policy=capped) == 0.15


def test_a_policy_decides_how_many_attempts_there_are() -> None:
    one = RetryPolicy(max_attempts=1)
    [event] = failure_events(
        delivery(), "x", app_id=APP, settings=SETTINGS, now=NOW, policy=one
    )
    assert isinstance(event, DeadLettered)
    many = RetryPolicy(max_attempts=9, base_ms=10, jitter=0.0)
    [event] = failure_events(
        delivery(attempt=6), "x", app_id=APP, settings=SETTINGS, now=NOW, policy=many
    )
    assert isinstance(event, RetryScheduled)
    assert event.due_at - NOW == timedelta(milliseconds=320)  # 10 ms · 2^(7-2)


@pytest.mark.parametrize(
    ("policy", "fragment"),
    [
        (RetryPolicy(max_attempts=0), "max_attempts"),
        (RetryPolicy(max_attempts=1000), "max_attempts"),
        (RetryPolicy(base_ms=-1), "base_ms"),
        (RetryPolicy(max_ms=10**9), "max_ms"),
        (RetryPolicy(jitter=float("nan")), "jitter"),
        (RetryPolicy(jitter=-0.1), "jitter"),
        (RetryPolicy(max_ms=100), "max_ms (100) must not be below retry.base_ms (500)"),
    ],
)
def test_a_policy_that_cannot_be_followed_is_refused(
    policy: RetryPolicy, fragment: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        check_retry(policy, SETTINGS)
    assert fragment in info.value.message


def test_the_policy_in_force_is_the_triggers_or_the_routes() -> None:
    state = fold_app(
        [
            script_saved("s1", "h"),
            trigger_added("t1", "s1", retry=RetryPolicy(max_attempts=7)),
            route_added(
                "r1", "s1", dispatch_mode="async", retry=RetryPolicy(max_attempts=3)
            ),
        ]
    )
    assert retry_of(delivery(trigger_id="t1"), state) == RetryPolicy(max_attempts=7)
    routed = delivery(source="route", route_id="r1", trigger_id=None)
    assert retry_of(routed, state) == RetryPolicy(max_attempts=3)
    assert retry_of(delivery(trigger_id="gone"), state) is None
