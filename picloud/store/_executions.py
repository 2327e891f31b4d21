"""Reads of the execution log, which is the app stream's invocation events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import msgspec

from picloud.domain.records import ExecutionDetail, ExecutionRecord
from picloud.events.app import InvocationAccepted, InvocationRecorded
from picloud.store._errors import translate_errors
from picloud.store._triggers import dead_letter_of_delivery

__all__ = [
    "ExecutionFilter",
    "abandoned_of",
    "count_runs",
    "get_execution",
    "letter_attempts",
    "list_executions",
    "record_of",
]


@dataclass(frozen=True)
class ExecutionFilter:
    """Which runs a list shows (every field optional)."""

    status: str | None = None
    script_id: str | None = None
    trigger: str | None = None
    """A prefix of the run's trigger label (``route:``, ``trigger:schedule:``…)."""
    since: datetime | None = None
    until: datetime | None = None


_SELECT = "SELECT stream_version, data FROM events WHERE stream = $1"
_RECORDED = " AND type = 'invocation.recorded.v1'"
# Literal predicates, so the planner can use the partial index of failed runs.
_STATUS = {
    None: "",
    "error": " AND run_status = 'error'",
    "ok": " AND run_status = 'ok'",
}
_decode = msgspec.json.Decoder(InvocationRecorded).decode
_decode_accepted = msgspec.json.Decoder(InvocationAccepted).decode


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _query(where: ExecutionFilter) -> tuple[str, list[object]]:
    """The SQL of a filtered page: $1 stream, $2 before, $3 limit, then the
    filters' values (each predicate a fixed text: no value is spliced in)."""
    sql = _SELECT + _RECORDED
    sql += _STATUS[where.status]
    args: list[object] = []
    filters = (
        (where.script_id, "(data ->> 'script_id') = ${}"),
        (None if where.trigger is None else _like_prefix(where.trigger),
         "(data ->> 'trigger') LIKE ${}"),
        (where.since, "(data ->> 'started_at')::timestamptz >= ${}"),
        (where.until, "(data ->> 'started_at')::timestamptz < ${}"),
    )  # fmt: skip
    for value, predicate in filters:
        if value is not None:
            args.append(value)
            sql += " AND " + predicate.format(3 + len(args))
    sql += (
        " AND ($2::bigint IS NULL OR stream_version < $2)"
        " ORDER BY stream_version DESC LIMIT $3"
    )
    return sql, args


def record_of(run: InvocationRecorded, abandoned: set[str]) -> ExecutionRecord:
    return ExecutionRecord(
        id=run.execution_id,
        script_id=run.script_id,
        status=run.status,
        trigger=run.trigger,
        started_at=run.started_at,
        duration_ms=run.duration_ms,
        error=run.error,
        logs=run.logs,
        attempt=run.attempt,
        abandoned=run.execution_id in abandoned,
        delivery_id=run.delivery_id,
        request_id=run.request_id,
    )


async def abandoned_of(db: asyncpg.Pool, app_id: str, ids: list[str]) -> set[str]:
    rows = await db.fetch(
        "SELECT execution_id FROM abandoned_executions"
        " WHERE app_id = $1 AND execution_id = ANY($2)",
        app_id,
        ids,
    )
    return {r["execution_id"] for r in rows}


async def list_executions(
    db: asyncpg.Pool,
    app_id: str,
    *,
    where: ExecutionFilter,
    before: int | None,
    limit: int,
) -> tuple[list[ExecutionRecord], int | None]:
    """Newest first; the page and the stream version to continue before (or None)."""
    sql, args = _query(where)
    with translate_errors("list executions"):
        rows = await db.fetch(sql, f"app-{app_id}", before, limit + 1, *args)
        runs = [_decode(row["data"]) for row in rows[:limit]]
        abandoned = await abandoned_of(db, app_id, [r.execution_id for r in runs])
    items = [record_of(run, abandoned) for run in runs]
    more = len(rows) > limit
    return items, (rows[limit - 1]["stream_version"] if more else None)


_BY_ID = """
SELECT type, data FROM events
WHERE stream = $1 AND execution_id = $2
  AND type IN ('invocation.recorded.v1', 'invocation.accepted.v1')
ORDER BY stream_version
"""
_ATTEMPTS = """
SELECT data FROM events
WHERE stream = $1 AND delivery_id = $2 AND type = 'invocation.recorded.v1'
ORDER BY stream_version
"""


async def get_execution(
    db: asyncpg.Pool, app_id: str, execution_id: str
) -> ExecutionDetail | None:
    """One run with every attempt of its delivery and its dead letter; an
    accepted async request not yet run is ``pending``."""
    stream = f"app-{app_id}"
    with translate_errors("get execution"):
        rows = await db.fetch(_BY_ID, stream, execution_id)
        runs = [
            _decode(r["data"]) for r in rows if r["type"] != "invocation.accepted.v1"
        ]
        accepted = [r for r in rows if r["type"] == "invocation.accepted.v1"]
        if not runs:
            if not accepted:
                return None
            script = _decode_accepted(accepted[0]["data"]).script_id
            delivery_id: str | None = f"route:{execution_id}"
        else:
            script, delivery_id = runs[-1].script_id, runs[-1].delivery_id
        attempts = runs
        if delivery_id is not None:
            found = await db.fetch(_ATTEMPTS, stream, delivery_id)
            attempts = [_decode(r["data"]) for r in found]
        abandoned = await abandoned_of(db, app_id, [execution_id])
        letter = None
        if delivery_id is not None:
            letter = await dead_letter_of_delivery(db, app_id, delivery_id)
    records = [record_of(run, abandoned) for run in attempts]
    mine = [r for r in records if r.id == execution_id]
    return ExecutionDetail(
        id=execution_id,
        script_id=script,
        status=mine[-1].status if mine else "pending",
        execution=mine[-1] if mine else None,
        attempts=records,
        dead_letter=letter,
    )


# The failed attempts of the delivery a dead letter ended, through the partial
# index of failed runs (a dead letter's attempts all failed).
_LETTER_ATTEMPTS = """
SELECT e.data
FROM dead_letters d
JOIN events e ON e.stream = $1 AND e.type = 'invocation.recorded.v1'
              AND e.run_status = 'error' AND e.delivery_id = d.delivery_id
WHERE d.app_id = $2 AND d.id = $3
ORDER BY e.stream_version
"""
# Runs of one script between two positions of its app's stream (what-if's
# bound); a refusal of the CPU budget ran nothing and is not counted.
_RUNS = """
SELECT count(*) FROM (
    SELECT 1 FROM events
    WHERE stream = $1 AND position BETWEEN $2 AND $3
      AND type = 'invocation.recorded.v1'
      AND (data ->> 'script_id') = $4
      AND (data ->> 'trigger') NOT LIKE 'throttled:%'
    LIMIT $5
) AS runs
"""


async def count_runs(  # noqa: PLR0913  # a range and its bound, each named
    db: asyncpg.Pool,
    app_id: str,
    script_id: str,
    *,
    first: int,
    last: int,
    limit: int,
) -> int:
    """How many recorded runs of ``script_id`` lie between positions ``first``
    and ``last`` (inclusive), counting no further than ``limit``."""
    with translate_errors("count runs"):
        found = await db.fetchval(_RUNS, f"app-{app_id}", first, last, script_id, limit)
    return int(found)


async def letter_attempts(
    db: asyncpg.Pool, app_id: str, dead_letter_id: str
) -> list[ExecutionRecord]:
    """The recorded runs of the delivery that became this dead letter, oldest first."""
    with translate_errors("read dead letter attempts"):
        rows = await db.fetch(_LETTER_ATTEMPTS, f"app-{app_id}", app_id, dead_letter_id)
        runs = [_decode(row["data"]) for row in rows]
        abandoned = await abandoned_of(db, app_id, [r.execution_id for r in runs])
    return [record_of(run, abandoned) for run in runs]
