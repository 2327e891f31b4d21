"""Projections of the app streams: scripts, routes, the execution log."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from picloud.domain.names import path_shape
from picloud.events import RecordedEvent
from picloud.events.app import (
    AppQuarantined,
    CorsSet,
    DataEvent,
    ExecutionAbandoned,
    FetchHostsSet,
    InvocationRecorded,
    RouteAdded,
    RouteRemoved,
    ScriptDeleted,
    ScriptSaved,
)
from picloud.store._fetch_journal import forget_fetches
from picloud.store._pool import jsonb
from picloud.store._projections.data import project_data
from picloud.store._projections.triggers import project_trigger_event

__all__ = ["project_app"]


_DATA_TYPES: frozenset[type] = frozenset(DataEvent.__args__)

_SAVE_SCRIPT = """
INSERT INTO scripts (id, app_id, name, kind, source, version, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
ON CONFLICT (id) DO UPDATE
SET name = $3, kind = $4, source = $5, version = $6, updated_at = $7
"""
_SET_IMPORTS = """
INSERT INTO script_imports (script_id, app_id, module_name)
SELECT $1, $2, unnest($3::text[])
"""
_ADD_ROUTE = """
INSERT INTO routes (id, app_id, script_id, method, path, path_shape, dispatch_mode,
                    created_at, capabilities, retry)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""


async def project_app(
    conn: asyncpg.Connection, records: Sequence[RecordedEvent]
) -> None:
    """Apply app-stream events in order; data writes are batched (they do not
    depend on the control events of the same batch). Invocation records need
    no row: the execution log reads them from the log itself."""
    data: list[DataEvent] = []
    for recorded in records:
        event = recorded.event
        kind = type(event)  # a set look-up: a replay passes millions of events
        if kind in _DATA_TYPES:
            data.append(event)  # type: ignore[arg-type]  # a DataEvent by its type
        elif isinstance(event, InvocationRecorded):  # no row: read from the log
            if event.fetches and event.delivery_id is not None:
                run_key = f"{event.delivery_id}#{event.attempt}"
                await forget_fetches(conn, event.app_id, run_key)
        else:
            await _apply_control(conn, recorded)
    if data:
        await project_data(conn, data)


async def _apply_control(conn: asyncpg.Connection, recorded: RecordedEvent) -> None:
    event = recorded.event
    match event:
        case ScriptSaved():
            await _save_script(conn, event)
        case ScriptDeleted():
            await conn.execute("DELETE FROM scripts WHERE id = $1", event.script_id)
        case RouteAdded():
            await conn.execute(
                _ADD_ROUTE,
                event.route_id,
                event.app_id,
                event.script_id,
                event.method,
                event.path,
                path_shape(event.path),
                event.dispatch_mode,
                event.at,
                event.capabilities,
                None if event.retry is None else jsonb(event.retry),
            )
        case RouteRemoved():
            await conn.execute("DELETE FROM routes WHERE id = $1", event.route_id)
        case ExecutionAbandoned():
            await conn.execute(
                "INSERT INTO abandoned_executions (execution_id, app_id, reason,"
                " abandoned_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                event.execution_id,
                event.app_id,
                event.reason,
                event.at,
            )
        case AppQuarantined():
            await conn.execute(
                "INSERT INTO quarantined_apps (app_id, since) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                event.app_id,
                event.at,
            )
        case CorsSet():
            await conn.execute(
                "INSERT INTO app_settings (app_id, cors) VALUES ($1, $2)"
                " ON CONFLICT (app_id) DO UPDATE SET cors = $2",
                event.app_id,
                None if event.cors is None else jsonb(event.cors),
            )
        case FetchHostsSet():
            await conn.execute(
                "INSERT INTO app_settings (app_id, fetch_hosts) VALUES ($1, $2)"
                " ON CONFLICT (app_id) DO UPDATE SET fetch_hosts = $2",
                event.app_id,
                event.hosts,
            )
        case _:
            await project_trigger_event(conn, recorded)


async def _save_script(conn: asyncpg.Connection, event: ScriptSaved) -> None:
    """The script's row and its import edges (replaced with each version)."""
    await conn.execute(
        _SAVE_SCRIPT,
        event.script_id,
        event.app_id,
        event.name,
        event.kind,
        event.source,
        event.version,
        event.at,
    )
    await conn.execute(
        "DELETE FROM script_imports WHERE script_id = $1", event.script_id
    )
    if event.imports:
        await conn.execute(
            _SET_IMPORTS, event.script_id, event.app_id, sorted(set(event.imports))
        )
