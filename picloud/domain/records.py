"""The records the admin API answers with: one Struct per thing it shows.

Pure data; the store reads them from projections, the deciders build them
from control state, and the OpenAPI document describes them.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from picloud.events.app import DispatchMode, LogEntry, ScriptKind

__all__ = [
    "AppRecord",
    "DeadLetterRecord",
    "ExecutionRecord",
    "HostRecord",
    "KeyRecord",
    "MemberRecord",
    "RouteRecord",
    "ScriptRecord",
    "TriggerRecord",
    "UserRecord",
]


class AppRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    slug: str
    name: str
    created_at: datetime
    updated_at: datetime


class HostRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A live shared app host, as a front door sees it."""

    name: str
    node_id: str
    address: str
    """Where its channel listens (host:port)."""
    active_apps: int | None
    """Apps active on it now; None if it did not answer in time."""


class UserRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    username: str
    admin: bool
    created_at: datetime
    updated_at: datetime


class MemberRecord(msgspec.Struct, frozen=True, kw_only=True):
    app_id: str
    user_id: str
    username: str
    role: str
    created_at: datetime
    updated_at: datetime


class KeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An API key as listed: never its secret, only the visible prefix."""

    id: str
    user_id: str
    name: str
    prefix: str
    scopes: list[str]
    app_id: str | None
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class ScriptRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    app_id: str
    name: str
    kind: ScriptKind
    version: int
    source: str
    imports: list[str]
    used_by: list[str]
    created_at: datetime
    updated_at: datetime


class RouteRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    app_id: str
    script_id: str
    method: str
    path: str
    dispatch_mode: DispatchMode


class TriggerRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    app_id: str
    kind: str
    script_id: str
    ops: list[str]
    collection: str | None
    capabilities: list[str] | None
    created_at: datetime


class DeadLetterRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    app_id: str
    source: str
    script_id: str
    trigger_id: str | None
    route_id: str | None
    event: msgspec.Raw
    request: msgspec.Raw | None
    error: str
    attempts: int
    depth: int
    resolution: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    first_attempt_at: datetime
    created_at: datetime


class ExecutionRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    script_id: str
    status: str
    trigger: str
    started_at: datetime
    duration_ms: float
    error: str | None
    logs: list[LogEntry]
    attempt: int
    abandoned: bool
