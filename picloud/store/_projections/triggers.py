"""Projections of triggers, dead letters and retention sweeps."""

from __future__ import annotations

import asyncpg

from picloud.events import RecordedEvent
from picloud.events.app import AbandonedExecutionExpired
from picloud.events.triggers import (
    DeadLettered,
    DeadLetterExpired,
    DeadLetterHandlerFailed,
    DeadLetterReplayed,
    DeadLetterResolved,
    ScheduleFired,
    TriggerAdded,
    TriggerEvent,
    TriggerRemoved,
)
from picloud.store._pool import jsonb

__all__ = ["project_trigger_event"]

_ADD_TRIGGER = """
INSERT INTO triggers (id, app_id, kind, script_id, ops, collection, capabilities,
                      created_at, retry, cron, timezone)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING
"""
_ADD_DEAD_LETTER = """
INSERT INTO dead_letters (id, app_id, delivery_id, source, script_id, trigger_id,
                          route_id, event, request, error, attempts, depth,
                          first_attempt_at, created_at, position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (id) DO NOTHING
"""
_RESOLVE = """
UPDATE dead_letters SET resolution = $2, resolved_by = $3, resolved_at = $4
WHERE id = $1
"""


async def project_trigger_event(
    conn: asyncpg.Connection, recorded: RecordedEvent
) -> None:
    """Apply one trigger, dead-letter or retention event (no-op for others)."""
    event = recorded.event
    if isinstance(event, AbandonedExecutionExpired):
        await conn.execute(
            "DELETE FROM abandoned_executions WHERE execution_id = $1",
            event.execution_id,
        )
    elif isinstance(event, TriggerEvent):
        await _apply(conn, event, recorded.position)


async def _apply(conn: asyncpg.Connection, event: TriggerEvent, position: int) -> None:
    match event:
        case TriggerAdded():
            await conn.execute(
                _ADD_TRIGGER,
                event.trigger_id,
                event.app_id,
                event.kind,
                event.script_id,
                event.ops,
                event.collection,
                event.capabilities,
                event.at,
                None if event.retry is None else jsonb(event.retry),
                event.cron,
                event.timezone,
            )
        case TriggerRemoved():
            await conn.execute("DELETE FROM triggers WHERE id = $1", event.trigger_id)
        case DeadLettered():
            await conn.execute(
                _ADD_DEAD_LETTER,
                event.dead_letter_id,
                event.app_id,
                event.delivery_id,
                event.source,
                event.script_id,
                event.trigger_id,
                event.route_id,
                bytes(event.event),
                None if event.request is None else jsonb(event.request),
                event.error,
                event.attempts,
                event.depth,
                event.first_attempt_at,
                event.at,
                position,
            )
        case DeadLetterReplayed():
            await conn.execute(
                _RESOLVE, event.dead_letter_id, "replayed", event.by, event.at
            )
        case DeadLetterResolved():
            await conn.execute(
                _RESOLVE, event.dead_letter_id, "resolved", event.by, event.at
            )
        case DeadLetterHandlerFailed():
            await conn.execute(
                "UPDATE dead_letters SET resolution = 'handler_failed',"
                " resolved_at = $2 WHERE id = $1 AND resolution IS NULL",
                event.dead_letter_id,
                event.at,
            )
        case DeadLetterExpired():
            await conn.execute(
                "DELETE FROM dead_letters WHERE id = $1", event.dead_letter_id
            )
        case ScheduleFired():
            await conn.execute(
                "UPDATE triggers SET last_fired_at = $2 WHERE id = $1",
                event.trigger_id,
                event.scheduled_at,
            )
        case _:
            pass  # RetryScheduled and DeliverySkipped change only the pending set
