"""Reads of the execution log, which is the app stream's invocation events."""

from __future__ import annotations

import asyncpg
import msgspec

from picloud.domain.records import ExecutionRecord
from picloud.events.app import InvocationRecorded
from picloud.store._errors import translate_errors

__all__ = ["ExecutionRecord", "list_executions"]


_COLUMNS = "SELECT stream_version, data FROM events WHERE stream = $1"
_ORDER = (
    " AND ($2::bigint IS NULL OR stream_version < $2)"
    " ORDER BY stream_version DESC LIMIT $3"
)
# Literal predicates, so the planner can use the partial index of failed runs.
_ALL = _COLUMNS + " AND type = 'invocation.recorded.v1'" + _ORDER
_FAILED = (
    _COLUMNS
    + " AND type = 'invocation.recorded.v1' AND (data ->> 'status') = 'error'"
    + _ORDER
)
_OK = (
    _COLUMNS
    + " AND type = 'invocation.recorded.v1' AND (data ->> 'status') = 'ok'"
    + _ORDER
)
_QUERIES = {None: _ALL, "error": _FAILED, "ok": _OK}
_decode = msgspec.json.Decoder(InvocationRecorded).decode


async def list_executions(
    db: asyncpg.Pool, app_id: str, *, status: str | None, before: int | None, limit: int
) -> tuple[list[ExecutionRecord], int | None]:
    """Newest first; the page and the stream version to continue before (or None)."""
    with translate_errors("list executions"):
        rows = await db.fetch(_QUERIES[status], f"app-{app_id}", before, limit + 1)
        runs = [_decode(row["data"]) for row in rows[:limit]]
        abandoned = {
            r["execution_id"]
            for r in await db.fetch(
                "SELECT execution_id FROM abandoned_executions"
                " WHERE app_id = $1 AND execution_id = ANY($2)",
                app_id,
                [run.execution_id for run in runs],
            )
        }
    items = [
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
    more = len(rows) > limit
    return items, (rows[limit - 1]["stream_version"] if more else None)
