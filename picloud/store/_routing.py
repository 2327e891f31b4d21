"""The routing table's starting point: apps, routes and quarantined apps."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import msgspec

from picloud.events.app import CorsPolicy
from picloud.store._errors import translate_errors

__all__ = ["RouteRow", "RoutingSnapshot", "routing_snapshot"]


@dataclass(frozen=True, slots=True)
class RouteRow:
    id: str
    app_id: str
    method: str
    path: str
    dispatch_mode: str


@dataclass(frozen=True)
class RoutingSnapshot:
    """The projections as of one snapshot; every event of a transaction below
    ``horizon`` is in it, events at or above it may be."""

    horizon: int
    apps: list[tuple[str, str]]
    """(id, slug) of every app."""
    routes: list[RouteRow]
    quarantined: set[str]
    cors: dict[str, CorsPolicy]
    """The apps that have a CORS policy, by id."""


async def routing_snapshot(pool: asyncpg.Pool) -> RoutingSnapshot:
    with translate_errors("load routing table"):
        async with (
            pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read"),
        ):
            horizon = await conn.fetchval(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())"
            )
            apps = await conn.fetch("SELECT id, slug FROM apps")
            routes = await conn.fetch(
                "SELECT id, app_id, method, path, dispatch_mode FROM routes"
            )
            quarantined = await conn.fetch("SELECT app_id FROM quarantined_apps")
            cors = await conn.fetch(
                "SELECT app_id, cors FROM app_settings WHERE cors IS NOT NULL"
            )
    return RoutingSnapshot(
        horizon=int(horizon),
        apps=[(row["id"], row["slug"]) for row in apps],
        routes=[RouteRow(**dict(row)) for row in routes],
        quarantined={row["app_id"] for row in quarantined},
        cors={row["app_id"]: _decode_cors(row["cors"]) for row in cors},
    )


_decode_cors = msgspec.json.Decoder(CorsPolicy).decode
