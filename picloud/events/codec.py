"""Encoding and decoding of events: one tagged union, codec singletons."""

from __future__ import annotations

from typing import Any

import msgspec

from picloud.events._base import Event, EventMeta
from picloud.events.app import AppEvent
from picloud.events.system import SystemEvent
from picloud.events.triggers import TriggerEvent

__all__ = [
    "AnyEvent",
    "decode_event",
    "decode_events",
    "decode_meta",
    "encode",
    "event_types",
]

AnyEvent = SystemEvent | AppEvent | TriggerEvent

_encoder = msgspec.json.Encoder()
_event_decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)
_meta_decoder: msgspec.json.Decoder[EventMeta] = msgspec.json.Decoder(EventMeta)
_events_decoder: msgspec.json.Decoder[list[AnyEvent]] = msgspec.json.Decoder(
    list[AnyEvent]
)


def encode(value: Event | EventMeta) -> bytes:
    return _encoder.encode(value)


def decode_event(data: bytes | str) -> Event:
    """Decode a stored payload; raises ``msgspec.DecodeError`` on a foreign tag."""
    return _event_decoder.decode(data)


def decode_events(joined: str | bytes) -> list[AnyEvent]:
    """Decode many stored payloads joined by commas (as SQL's ``string_agg``
    gives them) in one pass, as one JSON array: a bulk reader pays msgspec's
    call once, not per event. Raises ``msgspec.DecodeError`` if any is
    foreign; :func:`decode_event` then tells which."""
    if isinstance(joined, str):
        return _events_decoder.decode(f"[{joined}]")
    return _events_decoder.decode(b"[%s]" % joined)


def decode_meta(data: bytes | str) -> EventMeta:
    return _meta_decoder.decode(data)


def event_types() -> dict[str, type[Any]]:
    """Every known tag and its Struct, e.g. for the events API's ``type`` filter."""
    return {str(cls.__struct_config__.tag): cls for cls in AnyEvent.__args__}
