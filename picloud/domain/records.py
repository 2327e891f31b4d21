"""The records the admin API answers with: one Struct per thing it shows.

Pure data; the store reads them from projections, the deciders build them
from control state, and the OpenAPI document describes them.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from picloud.events.app import (
    CorsPolicy,
    DispatchMode,
    LogEntry,
    RetryPolicy,
    ScriptKind,
)

__all__ = [
    "AppRecord",
    "AppSettingsRecord",
    "DeadLetterRecord",
    "EventRecord",
    "ExecutionDetail",
    "ExecutionNotice",
    "ExecutionRecord",
    "HostRecord",
    "KeyRecord",
    "MemberRecord",
    "RouteRecord",
    "ScriptRecord",
    "ScriptVersion",
    "SecretRecord",
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
    capabilities: list[str] | None = None
    """What its script may do; None: the default (its app's KV and documents)."""
    retry: RetryPolicy | None = None


class TriggerRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    app_id: str
    kind: str
    script_id: str
    ops: list[str]
    collection: str | None
    capabilities: list[str] | None
    created_at: datetime
    retry: RetryPolicy | None = None
    cron: str | None = None
    """A schedule's cron expression, read in ``timezone``."""
    timezone: str | None = None
    last_fired_at: datetime | None = None
    """A schedule's latest fired time."""
    next_fire_at: datetime | None = None
    """A schedule's next time."""


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
    delivery_id: str | None = None
    """Set for a run of a delivery (an async route or a trigger): its attempts
    share it."""
    request_id: str | None = None
    """The ``X-Request-Id`` of the request a sync route's run answered."""


class ExecutionNotice(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A condition of an app's runs that the log records beside them: a
    delivery skipped (the trigger depth limit, a removed trigger or script),
    requests refused by the CPU budget, an execution its caller abandoned, a
    dead letter, a host killed by a run. ``kind`` names which; the fields a
    kind does not have are left out."""

    kind: str
    """``skipped``, ``throttled``, ``abandoned``, ``dead_letter``,
    ``host_killed`` or ``quarantined``."""
    at: datetime
    reason: str
    script_id: str | None = None
    trigger: str | None = None
    execution_id: str | None = None
    delivery_id: str | None = None
    dead_letter_id: str | None = None


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An event as it leaves PiCloud (the events API, its tail, the exports):
    ``data`` and ``meta`` as JSON, redacted (domain.redaction.public_json)."""

    position: int
    stream: str
    version: int
    type: str
    data: msgspec.Raw
    meta: msgspec.Raw
    recorded_at: datetime


class ScriptVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One saved version of a script, as the log has it."""

    version: int
    source: str
    recorded_at: datetime
    actor: str | None
    """Who saved it (``user:<id>``, ``key:<id>``, ``cli``)."""


class ExecutionDetail(msgspec.Struct, frozen=True, kw_only=True):
    """One execution with the attempts of its delivery and its dead letter."""

    id: str
    script_id: str
    status: str
    """``ok``, ``error``, or ``pending`` (an accepted async request not yet run)."""
    execution: ExecutionRecord | None
    """This run: its logs, error, timing (None while pending)."""
    attempts: list[ExecutionRecord]
    """Every attempt of the same delivery, oldest first (a sync run: itself)."""
    dead_letter: DeadLetterRecord | None
    """What the delivery became when every attempt failed."""


class AppSettingsRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An app's settings as the dashboard and the API show them."""

    app_id: str
    cors: CorsPolicy | None
    """None: browsers on other origins may not call the app's routes."""
    fetch_allowed_hosts: list[str] | None
    """The app's own list of hosts ``http.fetch`` may reach; None: the
    deployment's (``PICLOUD_FETCH_ALLOWED_HOSTS``)."""
    fetch_hosts_in_force: list[str]
    """What applies now: the app's list, else the deployment's; empty: any
    public host (private, loopback and link-local addresses never)."""


class SecretRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A secret as the API lists it: its name and times, never its value."""

    app_id: str
    name: str
    created_at: datetime
    updated_at: datetime
