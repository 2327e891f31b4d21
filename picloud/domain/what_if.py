"""What-if: another version of a script run again over recorded invocations.

The answer of ``POST /api/v1/admin/apps/{app}/what-if``: per invocation of
the script recorded in the range, what it did then (``original``, from the
log) and what the new source does with the same input and the app's data as
of then (``new``, a dry run whose writes stay in memory). Pure: the views of
recorded runs and their comparison; the runs are the app's actor's
(actors._what_if).

Writes are shown as the script made them, in the SDK's words (``kv.set``
and its collection, key and value), without what a run cannot reproduce:
times, previous values, and the random id of a created document. Values and
bodies are compared decoded, not as bytes: Lua orders a table's keys its own
way in each runtime.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import msgspec

from picloud.events import Event
from picloud.events.app import (
    DocCreated,
    DocDeleted,
    DocUpdated,
    ExecutionStatus,
    KvDeleted,
    KvSet,
    LogEntry,
    ResponseRecord,
)
from picloud.events.triggers import DeadLetterReplayed, DeadLetterResolved

__all__ = [
    "NewRun",
    "ResponseView",
    "RunView",
    "WhatIfAnswer",
    "WhatIfItem",
    "changed",
    "response_view",
    "write_view",
]


class ResponseView(msgspec.Struct, frozen=True, kw_only=True):
    """A run's HTTP answer: ``body`` as text when it is UTF-8, else
    ``body_base64``; neither when the record kept only its size and digest."""

    status: int
    headers: dict[str, str] = {}
    body: str | None = None
    body_base64: bytes | None = None
    size: int
    sha256: str


class RunView(msgspec.Struct, frozen=True, kw_only=True):
    status: ExecutionStatus
    error: str | None = None
    response: ResponseView | None = None
    writes: list[dict[str, Any]] = []


class NewRun(RunView, frozen=True, kw_only=True):
    logs: list[LogEntry] = []


class WhatIfItem(msgspec.Struct, frozen=True, kw_only=True):
    execution_id: str
    trigger: str
    position: int
    """The place of the invocation's record in the log."""
    started_at: datetime
    original: RunView
    new: NewRun | None
    """None: the invocation could not be run again (``note`` says why)."""
    changed: bool
    """The new run's status, response or writes differ from the original's
    (not the wording of an error, nor the logs)."""
    note: str | None = None


class WhatIfAnswer(msgspec.Struct, frozen=True, kw_only=True):
    app_id: str
    script_id: str
    from_position: int = msgspec.field(name="from")
    to_position: int = msgspec.field(name="to")
    runs: int
    """Invocations run again."""
    changed: int
    not_run: int
    items: list[WhatIfItem]


def response_view(record: ResponseRecord | None) -> ResponseView | None:
    if record is None:
        return None
    body, encoded, digest = None, None, record.sha256
    if record.body is not None:
        digest = hashlib.sha256(record.body).hexdigest()
        try:
            body = record.body.decode()
        except UnicodeDecodeError:
            encoded = record.body
    return ResponseView(
        status=record.status,
        headers=record.headers,
        body=body,
        body_base64=encoded,
        size=record.size,
        sha256=digest or "",
    )


def write_view(event: Event) -> dict[str, Any] | None:
    """A write of a run as the SDK call that made it (None: not a write)."""
    decode = msgspec.json.decode
    match event:
        case KvSet():
            return {
                "op": "kv.set",
                "collection": event.collection,
                "key": event.key,
                "value": decode(event.value),
            }
        case KvDeleted():
            return {"op": "kv.delete", "collection": event.collection, "key": event.key}
        case DocCreated():
            return {
                "op": "docs.create",
                "collection": event.collection,
                "data": decode(event.data),
            }
        case DocUpdated():
            return {
                "op": "docs.update",
                "collection": event.collection,
                "id": event.doc_id,
                "data": decode(event.data),
            }
        case DocDeleted():
            return {
                "op": "docs.delete",
                "collection": event.collection,
                "id": event.doc_id,
            }
        case DeadLetterReplayed() | DeadLetterResolved():
            verb = "replay" if isinstance(event, DeadLetterReplayed) else "resolve"
            return {"op": f"dead_letters.{verb}", "id": event.dead_letter_id}
        case _:
            return None


def changed(original: RunView, new: RunView) -> bool:
    """Whether ``new`` did otherwise than ``original`` (see WhatIfItem.changed)."""
    if original.status != new.status or original.writes != new.writes:
        return True
    a, b = original.response, new.response
    if a is None or b is None:
        return a is not b
    return a.status != b.status or not _same_body(a, b)


def _same_body(a: ResponseView, b: ResponseView) -> bool:
    if a.sha256 == b.sha256:
        return True
    if a.body is None or b.body is None:
        return False  # one kept only its digest: bytes are all there is to compare
    try:
        return bool(msgspec.json.decode(a.body) == msgspec.json.decode(b.body))
    except msgspec.DecodeError:
        return False
