"""Event types, their codec and pure state evolution. No I/O here."""

from __future__ import annotations

from picloud.events._base import Event, EventMeta, RecordedEvent, utcnow
from picloud.events.codec import (
    AnyEvent,
    decode_event,
    decode_meta,
    encode,
    event_types,
)
from picloud.events.system import AppCreated, AppDeleted, AppUpdated, SystemEvent

__all__ = [
    "AnyEvent",
    "AppCreated",
    "AppDeleted",
    "AppUpdated",
    "Event",
    "EventMeta",
    "RecordedEvent",
    "SystemEvent",
    "decode_event",
    "decode_meta",
    "encode",
    "event_types",
    "utcnow",
]
