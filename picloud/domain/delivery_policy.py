"""How a delivery runs and what its failure records (SPEC.md §4).

Pure policy, no I/O: the retry schedule (exponential backoff with ± jitter,
``PICLOUD_TRIGGER_RETRY_*``), the recursion stop for dead-letter handlers,
the trigger-depth limit, and the labels the execution log shows.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from picloud.config import Settings
from picloud.domain.access import Capability, script_capabilities
from picloud.events import Event
from picloud.events.app_state import AppState
from picloud.events.pending import Delivery
from picloud.events.triggers import (
    DeadLettered,
    DeadLetterHandlerFailed,
    RetryScheduled,
)

__all__ = [
    "failure_events",
    "granted",
    "retry_delay_s",
    "run_execution_id",
    "skip_reason",
    "trigger_label",
]


def retry_delay_s(
    attempt: int, settings: Settings, rng: random.Random | None = None
) -> float:
    """The pause before ``attempt`` (2, 3, …): base·2^(attempt-2), capped, ± jitter."""
    base = settings.trigger_retry_base_ms * 2 ** max(attempt - 2, 0)
    capped = min(base, settings.trigger_retry_max_ms)
    spread = capped * settings.trigger_retry_jitter
    jittered: float = capped + (rng or random).uniform(-spread, spread)
    return max(0.0, jittered) / 1000


def failure_events(
    delivery: Delivery, error: str, *, app_id: str, settings: Settings, now: datetime
) -> list[Event]:
    """What a failed attempt leads to: a retry, a dead letter, or — for a
    dead-letter handler — only a mark on the original (recursion stop)."""
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
    if delivery.attempt < settings.trigger_retry_max_attempts:
        attempt = delivery.attempt + 1
        due = now + timedelta(seconds=retry_delay_s(attempt, settings))
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


def granted(delivery: Delivery) -> frozenset[Capability]:
    """What the handler may do: its trigger's configuration, else the default."""
    configured = None if delivery.capabilities is None else list(delivery.capabilities)
    return script_capabilities(configured)
