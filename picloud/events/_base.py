"""The base of every event, its metadata, and an event as read back from the log."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

__all__ = ["Event", "EventMeta", "RecordedEvent", "rfc3339", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """``moment`` as every answer writes a time: RFC 3339 in UTC with ``Z``
    (what msgspec writes for the API's records; ``isoformat`` says +00:00)."""
    return msgspec.json.encode(moment.astimezone(UTC)).decode()[1:-1]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """A past-tense fact. Subclasses set an explicit, dotted, versioned ``tag``.

    The log is forever: a field added later gets a default; a field is never
    retyped and a tag never reused (STYLE.md "Events").
    """

    at: datetime
    """When the fact happened, by the writer's clock (``recorded_at`` is the commit)."""


class EventMeta(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Who caused an event and why; stored beside the payload."""

    actor: str | None = None
    """The principal (``user:<id>``, ``key:<id>``, ``system``) that caused it."""
    causation_id: str | None = None
    """The command or event this one follows from."""
    correlation_id: str | None = None
    """Shared by every event of one request, trigger chain or invocation."""
    trigger_depth: int = 0
    idempotency_key: str | None = None


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event with its place in the log."""

    position: int
    txid: int
    stream: str
    version: int
    event: Event
    meta: EventMeta
    recorded_at: datetime

    @property
    def type(self) -> str:
        return type(self.event).__struct_config__.tag  # type: ignore[return-value]  # tags are always str here
