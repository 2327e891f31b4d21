"""Reads of the execution log, which is the app stream's invocation events."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

from picloud.domain.records import ExecutionRecord
from picloud.events.app import InvocationRecorded
from picloud.store._errors import translate_errors

__all__ = [
    "ExecutionRecord",
    "count_runs",
    "get_execution",
    "letter_attempts",
    "list_executions",
]


_COLUMNS = (
    "SELECT stream_version, data FROM events WHERE stream = $1"
    " AND type = 'invocation.recorded.v1'"
)
# The optional filters of the dashboard; NULL parameters leave them out.
_FILTERS = (
    " AND ($4::text IS NULL OR (data ->> 'script_id') = $4)"
    " AND ($5::timestamptz IS NULL OR (data ->> 'started_at')::timestamptz >= $5)"
    " AND ($6::timestamptz IS NULL OR (data ->> 'started_at')::timestamptz < $6)"
)
_ORDER = (
    " AND ($2::bigint IS NULL OR stream_version < $2)"
    " ORDER BY stream_version DESC LIMIT $3"
)
# Literal predicates, so the planner can use the partial index of failed runs.
_ALL = _COLUMNS + _FILTERS + _ORDER
_FAILED = _COLUMNS + " AND (data ->> 'status') = 'error'" + _FILTERS + _ORDER
_OK = _COLUMNS + " AND (data ->> 'status') = 'ok'" + _FILTERS + _ORDER
_QUERIES = {None: _ALL, "error": _FAILED, "ok": _OK}
# The execution log has no index by execution id (0009): a look-up walks the
# stream's own index from the newest event, so recent runs are found at once.
_ONE = (
    _COLUMNS
    + " AND (data ->> 'execution_id') = $2 ORDER BY stream_version DESC LIMIT 1"
)
# The failed attempts of the delivery a dead letter ended, through the partial
# index of failed runs (a dead letter's attempts all failed).
_ATTEMPTS = """
SELECT e.stream_version, e.data
FROM dead_letters d
JOIN events e ON e.stream = $1 AND e.type = 'invocation.recorded.v1'
              AND (e.data ->> 'status') = 'error'
              AND (e.data ->> 'delivery_id') = d.delivery_id
WHERE d.app_id = $2 AND d.id = $3
ORDER BY e.stream_version
"""
_decode = msgspec.json.Decoder(InvocationRecorded).decode
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


async def list_executions(  # noqa: PLR0913  # filters are optional keywords
    db: asyncpg.Pool,
    app_id: str,
    *,
    status: str | None,
    before: int | None,
    limit: int,
    script_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[ExecutionRecord], int | None]:
    """Newest first; the page and the stream version to continue before (or None).

    ``since``/``until`` bound the start time (inclusive, exclusive).
    """
    with translate_errors("list executions"):
        rows = await db.fetch(
            _QUERIES[status],
            f"app-{app_id}",
            before,
            limit + 1,
            script_id,
            since,
            until,
        )
        items = await _records(db, app_id, rows[:limit])
    more = len(rows) > limit
    return items, (rows[limit - 1]["stream_version"] if more else None)


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


async def get_execution(
    db: asyncpg.Pool, app_id: str, execution_id: str
) -> ExecutionRecord | None:
    """The newest recorded run of ``execution_id`` in the app (a retried
    delivery's attempts have execution ids of their own)."""
    with translate_errors("get execution"):
        rows = await db.fetch(_ONE, f"app-{app_id}", execution_id)
        items = await _records(db, app_id, rows)
    return items[0] if items else None


async def letter_attempts(
    db: asyncpg.Pool, app_id: str, dead_letter_id: str
) -> list[ExecutionRecord]:
    """The recorded runs of the delivery that became this dead letter, oldest first."""
    with translate_errors("read dead letter attempts"):
        rows = await db.fetch(_ATTEMPTS, f"app-{app_id}", app_id, dead_letter_id)
        return await _records(db, app_id, rows)


async def _records(
    db: asyncpg.Pool, app_id: str, rows: list[asyncpg.Record]
) -> list[ExecutionRecord]:
    runs = [_decode(row["data"]) for row in rows]
    abandoned = {
        r["execution_id"]
        for r in await db.fetch(
            "SELECT execution_id FROM abandoned_executions"
            " WHERE app_id = $1 AND execution_id = ANY($2)",
            app_id,
            [run.execution_id for run in runs],
        )
    }
    return [
        ExecutionRecord(
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
        )
        for run in runs
    ]
