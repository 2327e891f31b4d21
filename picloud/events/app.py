"""Events of an app's own stream ``app-{id}``: scripts, routes, invocations."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from picloud.events._base import Event

__all__ = [
    "JSON_NULL",
    "AbandonedExecutionExpired",
    "AppEvent",
    "AppQuarantined",
    "CorsPolicy",
    "CorsSet",
    "DataEvent",
    "DispatchMode",
    "DocCreated",
    "DocDeleted",
    "DocUpdated",
    "ExecutionAbandoned",
    "ExecutionStatus",
    "FetchHostsSet",
    "HostKilled",
    "InvocationAccepted",
    "InvocationRecorded",
    "KvDeleted",
    "KvExpired",
    "KvSet",
    "LogEntry",
    "RequestRecord",
    "ResponseRecord",
    "RetryPolicy",
    "RouteAdded",
    "RouteRemoved",
    "ScriptDeleted",
    "ScriptKind",
    "ScriptSaved",
]

ScriptKind = Literal["endpoint", "module"]
DispatchMode = Literal["sync", "async"]
ExecutionStatus = Literal["ok", "error"]


class ScriptSaved(Event, frozen=True, tag="script.saved.v1"):
    """A script created (version 1) or replaced (the next version)."""

    app_id: str
    script_id: str
    name: str
    kind: ScriptKind
    source: str
    version: int
    imports: list[str] = []
    """Literal ``require("…")`` names in the source (the import graph's edges)."""


class ScriptDeleted(Event, frozen=True, tag="script.deleted.v1"):
    app_id: str
    script_id: str
    name: str


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """How a failed delivery is tried again: a field left None is the
    deployment's ``PICLOUD_TRIGGER_RETRY_*`` default at the time of the failure
    (checked when set: :mod:`picloud.domain.delivery_policy`)."""

    max_attempts: int | None = None
    base_ms: int | None = None
    max_ms: int | None = None
    jitter: float | None = None


class RouteAdded(Event, frozen=True, tag="route.added.v1"):
    app_id: str
    route_id: str
    script_id: str
    method: str
    path: str
    dispatch_mode: DispatchMode = "sync"
    capabilities: list[str] | None = None
    """What its script may do; None is the default a public route gets."""
    retry: RetryPolicy | None = None
    """An async route's retries; None: the deployment's defaults."""


class RouteRemoved(Event, frozen=True, tag="route.removed.v1"):
    app_id: str
    route_id: str


class RequestRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An HTTP request as a script sees it (``ctx.request``)."""

    method: str
    path: str
    params: dict[str, str] = {}
    query: dict[str, str] = {}
    headers: dict[str, str] = {}
    body: bytes = b""


class InvocationAccepted(Event, frozen=True, tag="invocation.accepted.v1"):
    """An async route's request, durable before the caller got 202; run afterwards."""

    app_id: str
    execution_id: str
    route_id: str
    script_id: str
    request: RequestRecord
    request_id: str | None = None
    """The caller's ``X-Request-Id``: every attempt's record carries it."""


class LogEntry(msgspec.Struct, frozen=True, kw_only=True):
    level: str
    time: datetime
    message: str


class ResponseRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a run's script answered, as its record keeps it: the body itself
    when small, else only its size and SHA-256 (enough to tell whether
    another run answered the same)."""

    status: int
    headers: dict[str, str] = {}
    body: bytes | None = None
    """None: larger than ``record_body_max_bytes``; see ``sha256``."""
    size: int = 0
    sha256: str | None = None
    """Hex SHA-256 of a body not kept (None when ``body`` is kept)."""


class InvocationRecorded(Event, frozen=True, tag="invocation.recorded.v1"):
    """One finished (or abandoned) invocation: the execution log's entry."""

    app_id: str
    execution_id: str
    script_id: str
    trigger: str
    """What started it: ``route:GET /path``, ``async:GET /path``, ``trigger:…``."""
    status: ExecutionStatus
    started_at: datetime
    duration_ms: float
    error: str | None = None
    logs: list[LogEntry] = []
    delivery_id: str | None = None
    """Set when the run was (an attempt of) a delivery: a trigger or async route."""
    attempt: int = 1
    cpu_ms: float = 0.0
    """CPU time of the script's own Lua (what counts against the app's budget)."""
    fetches: int = 0
    """``http.fetch`` calls the run made (a delivery's are journaled until now)."""
    request: RequestRecord | None = None
    """A sync route's request as stored (credentials redacted), so the run can
    be re-run (what-if); None for deliveries (their input is in the log
    already), with ``record_requests`` off, or a body over the bound."""
    response: ResponseRecord | None = None
    """What the script answered (None: it failed, or not recorded)."""
    request_id: str | None = None
    """The ``X-Request-Id`` of the HTTP request a sync route's run answered
    (the caller's, or one the front door made); None for deliveries."""


class ExecutionAbandoned(Event, frozen=True, tag="execution.abandoned.v1"):
    """A sync caller gave up waiting (504); the invocation may or may not have run."""

    app_id: str
    execution_id: str
    reason: str


class AbandonedExecutionExpired(
    Event, frozen=True, tag="execution.abandoned_expired.v1"
):
    """Removed from the abandoned executions by the retention sweep."""

    app_id: str
    execution_id: str


JSON_NULL = msgspec.Raw(b"null")
"""A KV value is never JSON null, so a null ``prev`` means "did not exist"."""


class KvSet(Event, frozen=True, tag="kv.set.v1"):
    """A KV entry written; ``prev`` is its value before (null: it did not exist)."""

    app_id: str
    collection: str
    key: str
    value: msgspec.Raw
    prev: msgspec.Raw = JSON_NULL
    expires_at: datetime | None = None
    """Set with a TTL: from then on the key reads as absent, and its actor
    records a ``KvExpired`` (None: the entry lives until changed)."""


class KvExpired(Event, frozen=True, tag="kv.expired.v1"):
    """A KV entry's TTL ran out: it is gone, as if deleted (``prev`` its value)."""

    app_id: str
    collection: str
    key: str
    prev: msgspec.Raw
    expires_at: datetime


class KvDeleted(Event, frozen=True, tag="kv.deleted.v1"):
    app_id: str
    collection: str
    key: str
    prev: msgspec.Raw


class DocCreated(Event, frozen=True, tag="doc.created.v1"):
    app_id: str
    collection: str
    doc_id: str
    data: msgspec.Raw


class DocUpdated(Event, frozen=True, tag="doc.updated.v1"):
    """A document's data replaced; ``prev_data`` is what it held before."""

    app_id: str
    collection: str
    doc_id: str
    data: msgspec.Raw
    prev_data: msgspec.Raw


class DocDeleted(Event, frozen=True, tag="doc.deleted.v1"):
    app_id: str
    collection: str
    doc_id: str
    prev_data: msgspec.Raw


DataEvent = KvSet | KvDeleted | KvExpired | DocCreated | DocUpdated | DocDeleted


class HostKilled(Event, frozen=True, tag="app.host_killed.v1"):
    """A script of this app overran its hard deadline and its host was killed."""

    app_id: str
    host: str
    execution_id: str


class AppQuarantined(Event, frozen=True, tag="app.quarantined.v1"):
    """The app brought hosts down too often; it now runs on a host of its own."""

    app_id: str
    host_kills: int


class CorsPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Which browser origins may call the app's routes (the front door answers
    preflights and adds the ``Access-Control-*`` headers)."""

    origins: list[str]
    """``https://example.com`` (scheme, host, port), or ``*`` for any."""
    methods: list[str] = []
    """Allowed methods; empty: the app's routes' methods as a preflight asks."""
    headers: list[str] = []
    """Request headers a browser may send besides the simple ones."""
    max_age_s: int = 600


class CorsSet(Event, frozen=True, tag="app.cors_set.v1"):
    """The app's CORS policy from now on (None: no cross-origin access)."""

    app_id: str
    cors: CorsPolicy | None = None


class FetchHostsSet(Event, frozen=True, tag="app.fetch_hosts_set.v1"):
    """The hosts ``http.fetch`` may reach from now on (None: the deployment's
    ``PICLOUD_FETCH_ALLOWED_HOSTS``; empty there: any public host)."""

    app_id: str
    hosts: list[str] | None = None


AppEvent = (
    ScriptSaved
    | ScriptDeleted
    | RouteAdded
    | RouteRemoved
    | InvocationAccepted
    | InvocationRecorded
    | ExecutionAbandoned
    | AbandonedExecutionExpired
    | HostKilled
    | AppQuarantined
    | CorsSet
    | FetchHostsSet
    | KvSet
    | KvDeleted
    | KvExpired
    | DocCreated
    | DocUpdated
    | DocDeleted
)
