"""Reads of the execution log projection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from picloud.store._errors import translate_errors

__all__ = ["ExecutionRecord", "list_executions"]


class ExecutionRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    script_id: str
    status: str
    trigger: str
    started_at: datetime
    duration_ms: float
    error: str | None
    logs: msgspec.Raw
    abandoned: bool


_LIST = """
SELECT x.id, x.script_id, x.status, x.trigger, x.started_at, x.duration_ms, x.error,
       x.logs, x.position, a.execution_id IS NOT NULL AS abandoned
FROM executions x
LEFT JOIN abandoned_executions a ON a.execution_id = x.id
WHERE x.app_id = $1
  AND ($2::text IS NULL OR x.status = $2)
  AND ($3::bigint IS NULL OR x.position < $3)
ORDER BY x.position DESC
LIMIT $4
"""


async def list_executions(
    db: asyncpg.Pool, app_id: str, *, status: str | None, before: int | None, limit: int
) -> tuple[list[ExecutionRecord], int | None]:
    """Newest first; returns the page and the position to continue before (or None)."""
    with translate_errors("list executions"):
        rows = await db.fetch(_LIST, app_id, status, before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [_record(row) for row in rows]
    return items, (rows[-1]["position"] if more else None)


def _record(row: Any) -> ExecutionRecord:
    values = dict(row)
    values.pop("position")
    values["logs"] = msgspec.Raw(values["logs"])
    return ExecutionRecord(**values)
