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
    "DataEvent",
    "DispatchMode",
    "DocCreated",
    "DocDeleted",
    "DocUpdated",
    "ExecutionAbandoned",
    "ExecutionStatus",
    "HostKilled",
    "InvocationAccepted",
    "InvocationRecorded",
    "KvDeleted",
    "KvSet",
    "LogEntry",
    "RequestRecord",
    "ResponseRecord",
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


class RouteAdded(Event, frozen=True, tag="route.added.v1"):
    app_id: str
    route_id: str
    script_id: str
    method: str
    path: str
    dispatch_mode: DispatchMode = "sync"


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
    request: RequestRecord | None = None
    """A sync route's request as stored (credentials redacted), so the run can
    be re-run (what-if); None for deliveries (their input is in the log
    already), with ``record_requests`` off, or a body over the bound."""
    response: ResponseRecord | None = None
    """What the script answered (None: it failed, or not recorded)."""


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


DataEvent = KvSet | KvDeleted | DocCreated | DocUpdated | DocDeleted


class HostKilled(Event, frozen=True, tag="app.host_killed.v1"):
    """A script of this app overran its hard deadline and its host was killed."""

    app_id: str
    host: str
    execution_id: str


class AppQuarantined(Event, frozen=True, tag="app.quarantined.v1"):
    """The app brought hosts down too often; it now runs on a host of its own."""

    app_id: str
    host_kills: int


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
    | KvSet
    | KvDeleted
    | DocCreated
    | DocUpdated
    | DocDeleted
)
