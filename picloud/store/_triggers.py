"""Reads of the triggers and dead letters projections, and of the work the
scheduler and the retention sweeps must hand to apps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from picloud.domain.records import DeadLetterRecord, TriggerRecord
from picloud.domain.schedules import time_after
from picloud.store._errors import translate_errors
from picloud.store._scripts import retry_of

__all__ = [
    "dead_letter_of_delivery",
    "due_wakeups",
    "expired_abandoned",
    "expired_dead_letters",
    "get_dead_letter",
    "get_trigger",
    "list_dead_letters",
    "list_triggers",
    "open_dead_letter_counts",
    "present",
    "set_wakeup",
]


_TRIGGER = (
    "SELECT id, app_id, kind, script_id, ops, collection, capabilities, created_at,"
    " retry, cron, timezone, last_fired_at FROM triggers"
)


def _trigger(row: Any) -> TriggerRecord:
    values = dict(row)
    values["retry"] = retry_of(values["retry"])
    if values["cron"]:
        base = values["last_fired_at"] or values["created_at"]
        values["next_fire_at"] = time_after(values["cron"], values["timezone"], base)
    return TriggerRecord(**values)


_LETTER = """
SELECT id, app_id, source, script_id, trigger_id, route_id, event, request, error,
       attempts, depth, resolution, resolved_by, resolved_at, first_attempt_at,
       created_at, position
FROM dead_letters
"""


def _letter(row: Any) -> DeadLetterRecord:
    values = dict(row)
    values.pop("position", None)
    values["event"] = msgspec.Raw(values["event"])
    if values["request"] is not None:
        values["request"] = msgspec.Raw(values["request"])
    return DeadLetterRecord(**values)


async def list_triggers(db: asyncpg.Pool, app_id: str) -> list[TriggerRecord]:
    with translate_errors("list triggers"):
        rows = await db.fetch(
            _TRIGGER + " WHERE app_id = $1 ORDER BY created_at", app_id
        )
    return [_trigger(r) for r in rows]


async def get_trigger(db: asyncpg.Pool, trigger_id: str) -> TriggerRecord | None:
    with translate_errors("get trigger"):
        row = await db.fetchrow(_TRIGGER + " WHERE id = $1", trigger_id)
    return None if row is None else _trigger(row)


async def get_dead_letter(
    db: asyncpg.Pool | asyncpg.Connection, app_id: str, dead_letter_id: str
) -> DeadLetterRecord | None:
    with translate_errors("get dead letter"):
        row = await db.fetchrow(
            _LETTER + " WHERE app_id = $1 AND id = $2", app_id, dead_letter_id
        )
    return None if row is None else _letter(row)


async def dead_letter_of_delivery(
    db: asyncpg.Pool, app_id: str, delivery_id: str
) -> DeadLetterRecord | None:
    """The newest dead letter a delivery became (None: it did not)."""
    with translate_errors("dead letter of delivery"):
        row = await db.fetchrow(
            _LETTER + " WHERE app_id = $1 AND delivery_id = $2"
            " ORDER BY position DESC LIMIT 1",
            app_id,
            delivery_id,
        )
    return None if row is None else _letter(row)


# Open: nobody resolved it and no replay took it over (a replay that fails
# again ends as a dead letter of its own). A dead-letter handler's failure
# leaves the letter open: it still needs a person.
_OPEN = (
    "resolution IS DISTINCT FROM 'resolved' AND resolution IS DISTINCT FROM 'replayed'"
)


async def list_dead_letters(  # noqa: PLR0913  # filters are optional keywords
    db: asyncpg.Pool,
    app_id: str,
    *,
    resolved: bool | None,
    before: int | None,
    limit: int,
    open_only: bool = False,
    script_id: str | None = None,
) -> tuple[list[DeadLetterRecord], int | None]:
    """Newest first; ``resolved`` filters on resolution = 'resolved',
    ``open_only`` keeps the open ones (see ``_OPEN``), ``script_id`` one
    handler's."""
    with translate_errors("list dead letters"):
        rows = await db.fetch(
            _LETTER + " WHERE app_id = $1"
            " AND ($2::boolean IS NULL"
            "      OR (resolution IS NOT DISTINCT FROM 'resolved') = $2)"
            " AND ($3::bigint IS NULL OR position < $3)"
            f" AND (NOT $5::boolean OR ({_OPEN}))"
            " AND ($6::text IS NULL OR script_id = $6)"
            " ORDER BY position DESC LIMIT $4",
            app_id,
            resolved,
            before,
            limit + 1,
            open_only,
            script_id,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return [_letter(r) for r in rows], (rows[-1]["position"] if more else None)


async def open_dead_letter_counts(db: asyncpg.Pool) -> dict[str, int]:
    """Open dead letters per app (the dashboard's badges; see ``_OPEN``)."""
    with translate_errors("count dead letters"):
        rows = await db.fetch(
            "SELECT app_id, count(*) AS n FROM dead_letters"  # the _OPEN ones
            " WHERE resolution IS DISTINCT FROM 'resolved'"
            " AND resolution IS DISTINCT FROM 'replayed' GROUP BY app_id"
        )
    return {r["app_id"]: r["n"] for r in rows}


async def due_wakeups(db: asyncpg.Pool, limit: int = 1000) -> list[str]:
    """Apps with deliveries due now (for the scheduler to wake)."""
    with translate_errors("due wakeups"):
        rows = await db.fetch(
            "SELECT app_id FROM app_wakeups WHERE due_at <= now()"
            " ORDER BY due_at LIMIT $1",
            limit,
        )
    return [r["app_id"] for r in rows]


async def expired_dead_letters(
    db: asyncpg.Pool, older_than: datetime, limit: int = 500
) -> dict[str, list[str]]:
    with translate_errors("expired dead letters"):
        rows = await db.fetch(
            "SELECT app_id, id FROM dead_letters WHERE created_at < $1"
            " ORDER BY created_at LIMIT $2",
            older_than,
            limit,
        )
    found: dict[str, list[str]] = {}
    for r in rows:
        found.setdefault(r["app_id"], []).append(r["id"])
    return found


async def expired_abandoned(
    db: asyncpg.Pool, older_than: datetime, limit: int = 500
) -> dict[str, list[str]]:
    with translate_errors("expired abandoned executions"):
        rows = await db.fetch(
            "SELECT app_id, execution_id FROM abandoned_executions"
            " WHERE abandoned_at < $1 ORDER BY abandoned_at LIMIT $2",
            older_than,
            limit,
        )
    found: dict[str, list[str]] = {}
    for r in rows:
        found.setdefault(r["app_id"], []).append(r["execution_id"])
    return found


async def present(
    db: asyncpg.Pool, app_id: str, *, dead_letters: list[str], abandoned: list[str]
) -> tuple[list[str], list[str]]:
    """Which of these dead letters and abandoned executions still exist."""
    with translate_errors("retention check"):
        letters = await db.fetch(
            "SELECT id FROM dead_letters WHERE app_id = $1 AND id = ANY($2)",
            app_id,
            dead_letters,
        )
        executions = await db.fetch(
            "SELECT execution_id FROM abandoned_executions"
            " WHERE app_id = $1 AND execution_id = ANY($2)",
            app_id,
            abandoned,
        )
    return [r[0] for r in letters], [r[0] for r in executions]


async def set_wakeup(
    conn: asyncpg.Pool | asyncpg.Connection, app_id: str, due: datetime | None
) -> None:
    """Record when the app must next be awake for its deliveries (None: never)."""
    with translate_errors("set wakeup"):
        if due is None:
            await conn.execute("DELETE FROM app_wakeups WHERE app_id = $1", app_id)
        else:
            await conn.execute(
                "INSERT INTO app_wakeups (app_id, due_at) VALUES ($1, $2)"
                " ON CONFLICT (app_id) DO UPDATE SET due_at = $2",
                app_id,
                due,
            )
