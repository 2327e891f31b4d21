"""How a delivery runs and what its failure records (SPEC.md §4).

Pure policy, no I/O: the retry schedule (exponential backoff with ± jitter,
``PICLOUD_TRIGGER_RETRY_*``, which a route's or trigger's own
:class:`~picloud.events.app.RetryPolicy` overrides field by field), the
recursion stop for dead-letter handlers, the trigger-depth limit, and the
labels the execution log shows.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from picloud.config import Settings
from picloud.domain.access import Capability, script_capabilities
from picloud.errors import InvalidInput
from picloud.events import Event
from picloud.events.app import RetryPolicy
from picloud.events.app_state import AppState
from picloud.events.pending import Delivery
from picloud.events.triggers import (
    DeadLettered,
    DeadLetterHandlerFailed,
    RetryScheduled,
)

T = TypeVar("T")

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_DELAY_MS",
    "Retry",
    "check_retry",
    "effective_retry",
    "failure_events",
    "granted",
    "retry_delay_s",
    "retry_of",
    "run_execution_id",
    "skip_reason",
    "trigger_label",
]


MAX_ATTEMPTS = 100
MAX_DELAY_MS = 86_400_000
"""A day: the longest pause a policy may ask for between two attempts."""


@dataclass(frozen=True)
class Retry:
    """A retry policy in force: every field set."""

    max_attempts: int
    base_ms: int
    max_ms: int
    jitter: float


def effective_retry(policy: RetryPolicy | None, settings: Settings) -> Retry:
    """``policy`` with every field it leaves None taken from the settings."""
    given = policy or RetryPolicy()
    return Retry(
        max_attempts=_or(given.max_attempts, settings.trigger_retry_max_attempts),
        base_ms=_or(given.base_ms, settings.trigger_retry_base_ms),
        max_ms=_or(given.max_ms, settings.trigger_retry_max_ms),
        jitter=_or(given.jitter, settings.trigger_retry_jitter),
    )


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


def check_retry(policy: RetryPolicy | None, settings: Settings) -> None:
    """Refuse a policy that cannot be followed, naming the field (InvalidInput)."""
    if policy is None:
        return
    if policy.max_attempts is not None and not 1 <= policy.max_attempts <= MAX_ATTEMPTS:
        raise InvalidInput(f"retry.max_attempts must be from 1 to {MAX_ATTEMPTS}")
    for name in ("base_ms", "max_ms"):
        value = getattr(policy, name)
        if value is not None and not 1 <= value <= MAX_DELAY_MS:
            raise InvalidInput(f"retry.{name} must be from 1 to {MAX_DELAY_MS} (a day)")
    if policy.jitter is not None and not (
        math.isfinite(policy.jitter) and 0.0 <= policy.jitter <= 1.0
    ):
        raise InvalidInput("retry.jitter must be a fraction from 0 to 1")
    full = effective_retry(policy, settings)
    if full.max_ms < full.base_ms:
        raise InvalidInput(
            f"retry.max_ms ({full.max_ms}) must not be below retry.base_ms "
            f"({full.base_ms}); a field left out is the deployment's default"
        )


def retry_of(delivery: Delivery, state: AppState) -> RetryPolicy | None:
    """The policy of the trigger or route the delivery came from, as in force."""
    if delivery.trigger_id is not None:
        trigger = state.triggers.get(delivery.trigger_id)
        return None if trigger is None else trigger.retry
    if delivery.route_id is not None:
        route = state.routes.get(delivery.route_id)
        return None if route is None else route.retry
    return None


def retry_delay_s(
    attempt: int,
    settings: Settings,
    rng: random.Random | None = None,
    *,
    policy: RetryPolicy | None = None,
) -> float:
    """The pause before ``attempt`` (2, 3, …): base·2^(attempt-2), capped, ± jitter."""
    full = effective_retry(policy, settings)
    base = full.base_ms * 2 ** min(max(attempt - 2, 0), 40)
    capped = min(base, full.max_ms)
    spread = capped * full.jitter
    jittered: float = capped + (rng or random).uniform(-spread, spread)
    return max(0.0, jittered) / 1000


def failure_events(  # noqa: PLR0913  # the failure and what decides its fate
    delivery: Delivery,
    error: str,
    *,
    app_id: str,
    settings: Settings,
    now: datetime,
    policy: RetryPolicy | None = None,
) -> list[Event]:
    """What a failed attempt leads to: a retry, a dead letter, or — for a
    dead-letter handler — only a mark on the original (recursion stop).
    ``policy`` is the trigger's or route's own (:func:`retry_of`)."""
    if delivery.dead_letter_id is not None:
        return [
            DeadLetterHandlerFailed(
                at=now,
                app_id=app_id,
                dead_letter_id=delivery.dead_letter_id,
                delivery_id=delivery.id,
                error=error,
            )
        ]
    if delivery.attempt < effective_retry(policy, settings).max_attempts:
        attempt = delivery.attempt + 1
        delay = retry_delay_s(attempt, settings, policy=policy)
        due = now + timedelta(seconds=delay)
        return [
            RetryScheduled(
                at=now,
                app_id=app_id,
                delivery_id=delivery.id,
                attempt=attempt,
                due_at=due,
                error=error,
            )
        ]
    return [
        DeadLettered(
            at=now,
            app_id=app_id,
            dead_letter_id=str(uuid.uuid4()),
            delivery_id=delivery.id,
            script_id=delivery.script_id,
            trigger_id=delivery.trigger_id,
            route_id=delivery.route_id,
            source=delivery.source,
            event=delivery.event,
            request=delivery.request,
            error=error,
            attempts=delivery.attempt,
            first_attempt_at=delivery.first_attempt_at,
            depth=delivery.depth,
        )
    ]


def skip_reason(delivery: Delivery, state: AppState, settings: Settings) -> str | None:
    """Why the delivery must not run (it is then skipped, not dead-lettered)."""
    if delivery.depth > settings.max_trigger_depth:
        return (
            f"trigger depth {delivery.depth} exceeds the limit of "
            f"{settings.max_trigger_depth}: a trigger loop?"
        )
    if delivery.trigger_id is not None and delivery.trigger_id not in state.triggers:
        return "the trigger was removed"
    if delivery.script_id not in state.scripts:
        return "the script was deleted"
    return None


def run_execution_id(delivery: Delivery) -> str:
    """The execution id of the next attempt (an async route's first attempt keeps
    the id its caller got with 202)."""
    if delivery.execution_id is not None:
        if delivery.attempt == 1:
            return delivery.execution_id
        return f"{delivery.execution_id}-{delivery.attempt}"
    return str(uuid.uuid4())


def trigger_label(delivery: Delivery, state: AppState) -> str:
    if delivery.source == "route":
        route = state.routes.get(delivery.route_id or "")
        return (
            f"async:{route.method} {route.path}" if route else "async:(removed route)"
        )
    return f"trigger:{delivery.source}:{delivery.trigger_id}"


def granted(delivery: Delivery, state: AppState | None = None) -> frozenset[Capability]:
    """What the handler may do: its trigger's configuration, or its async
    route's as in force (with ``state``), else the default."""
    configured = delivery.capabilities
    if configured is None and delivery.route_id is not None and state is not None:
        route = state.routes.get(delivery.route_id)
        configured = None if route is None else route.capabilities
    return script_capabilities(None if configured is None else list(configured))
