"""Reads of the scripts and routes projections, and their API shapes."""

from __future__ import annotations

import asyncpg
import msgspec

from picloud.domain.records import RouteRecord, ScriptRecord, ScriptVersion
from picloud.events.app import RetryPolicy
from picloud.store._errors import translate_errors

__all__ = [
    "get_route",
    "get_script",
    "list_routes",
    "list_scripts",
    "retry_of",
    "script_versions",
]


# used_by: the other scripts of the app that require a module by its name
# (an endpoint is never imported: require only finds modules).
_SCRIPT = """
SELECT s.id, s.app_id, s.name, s.kind, s.version, s.source, s.created_at, s.updated_at,
       ARRAY(SELECT i.module_name FROM script_imports i
             WHERE i.script_id = s.id ORDER BY i.module_name COLLATE "C") AS imports,
       CASE WHEN s.kind = 'module' THEN
         ARRAY(SELECT u.name FROM script_imports i JOIN scripts u ON u.id = i.script_id
               WHERE i.app_id = s.app_id AND i.module_name = s.name AND u.id <> s.id
               ORDER BY u.name COLLATE "C")
       ELSE '{}'::text[] END AS used_by
FROM scripts s
"""


def _script(row: asyncpg.Record) -> ScriptRecord:
    return ScriptRecord(**dict(row))


async def get_script(db: asyncpg.Pool, script_id: str) -> ScriptRecord | None:
    with translate_errors("get script"):
        row = await db.fetchrow(_SCRIPT + " WHERE s.id = $1", script_id)
    return None if row is None else _script(row)


async def list_scripts(db: asyncpg.Pool, app_id: str) -> list[ScriptRecord]:
    with translate_errors("list scripts"):
        rows = await db.fetch(_SCRIPT + " WHERE s.app_id = $1 ORDER BY s.name", app_id)
    return [_script(row) for row in rows]


_ROUTE = (
    "SELECT id, app_id, script_id, method, path, dispatch_mode, capabilities, retry"
    " FROM routes"
)
_decode_retry = msgspec.json.Decoder(RetryPolicy).decode


def retry_of(data: bytes | None) -> RetryPolicy | None:
    """A retry policy column (jsonb, NULL for the defaults)."""
    return None if data is None else _decode_retry(data)


def _route(row: asyncpg.Record) -> RouteRecord:
    values = dict(row)
    values["retry"] = retry_of(values["retry"])
    return RouteRecord(**values)


async def get_route(db: asyncpg.Pool, route_id: str) -> RouteRecord | None:
    with translate_errors("get route"):
        row = await db.fetchrow(_ROUTE + " WHERE id = $1", route_id)
    return None if row is None else _route(row)


async def list_routes(db: asyncpg.Pool, app_id: str) -> list[RouteRecord]:
    with translate_errors("list routes"):
        rows = await db.fetch(
            _ROUTE + " WHERE app_id = $1 ORDER BY path, method", app_id
        )
    return [_route(row) for row in rows]


_VERSIONS = """
SELECT (data ->> 'version')::int AS version, data ->> 'source' AS source,
       recorded_at, meta ->> 'actor' AS actor
FROM events
WHERE stream = $1 AND type = 'script.saved.v1' AND data ->> 'script_id' = $2
ORDER BY stream_version
"""


async def script_versions(
    db: asyncpg.Pool, app_id: str, script_id: str
) -> list[ScriptVersion]:
    """Every saved version of a script, oldest first, from the log itself."""
    with translate_errors("script versions"):
        rows = await db.fetch(_VERSIONS, f"app-{app_id}", script_id)
    return [ScriptVersion(**dict(row)) for row in rows]
