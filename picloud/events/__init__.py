"""Event types, their codec and pure state evolution. No I/O here."""

from __future__ import annotations

from picloud.events._base import Event, EventMeta, RecordedEvent, rfc3339, utcnow
from picloud.events.codec import (
    AnyEvent,
    decode_event,
    decode_events,
    decode_meta,
    encode,
    event_types,
)
from picloud.events.system import (
    ApiKeyCreated,
    ApiKeyRevoked,
    AppCreated,
    AppDeleted,
    AppUpdated,
    IdentityEvent,
    MemberRemoved,
    MemberSet,
    SecretDeleted,
    SecretSet,
    SystemEvent,
    UserAdminChanged,
    UserCreated,
    UserDeleted,
    UserPasswordChanged,
)

__all__ = [
    "AnyEvent",
    "ApiKeyCreated",
    "ApiKeyRevoked",
    "AppCreated",
    "AppDeleted",
    "AppUpdated",
    "Event",
    "EventMeta",
    "IdentityEvent",
    "MemberRemoved",
    "MemberSet",
    "RecordedEvent",
    "SecretDeleted",
    "SecretSet",
    "SystemEvent",
    "UserAdminChanged",
    "UserCreated",
    "UserDeleted",
    "UserPasswordChanged",
    "decode_event",
    "decode_events",
    "decode_meta",
    "encode",
    "event_types",
    "rfc3339",
    "utcnow",
]
