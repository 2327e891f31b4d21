"""What a reader of the global order asks for: filters, and where to go on from.

Shared by the events API, its live tail and ``picloud events``, so the three
read the same events for the same words. Pure; the store runs the query.

The place to go on from (``after``) is either the opaque token a page
answered as ``next`` — the ``(txid, position)`` cursor of the global order
(DESIGN.md), with the position floor of the first request kept in it — or,
to start, a plain position ``P``: the events with a position above ``P``, in
the global order. Going on from a token never skips or repeats an event.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta

import msgspec

from picloud.errors import InvalidInput

__all__ = [
    "After",
    "EventQuery",
    "app_stream_id",
    "decode_after",
    "encode_after",
    "parse_time",
    "parse_types",
]

_RELATIVE = re.compile(r"(\d+)\s*(s|m|h|d|w)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_TOKEN = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


class EventQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Which events: all of them when every field is None.

    ``after_position``/``upto_position`` bound the position (exclusive,
    inclusive); ``since``/``until`` the commit time (inclusive, exclusive).
    """

    streams: tuple[str, ...] | None = None
    types: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_position: int | None = None
    upto_position: int | None = None


class After(msgspec.Struct, frozen=True):
    """Where a read goes on from: the cursor ``(txid, position)`` of the global
    order, and the position floor of the read's first request (or None)."""

    txid: int = 0
    position: int = 0
    floor: int | None = None


def encode_after(after: After) -> str:
    """The opaque ``next`` token of ``after``."""
    text = f"{after.txid}.{after.position}"
    if after.floor is not None:
        text += f".{after.floor}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_after(value: str | None) -> After:
    """``after=``: a token a page answered, a plain position, or nothing.

    Raises:
        InvalidInput: anything else.
    """
    if value is None or value == "":
        return After()
    if value.isdigit():
        return After(floor=int(value))
    try:
        padded = value + "=" * (-len(value) % 4)
        text = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput(
            "after must be a position or the next token of a page"
        ) from None
    match = _TOKEN.fullmatch(text)
    if match is None:
        raise InvalidInput("after must be a position or the next token of a page")
    floor = match.group(3)
    return After(
        int(match.group(1)), int(match.group(2)), None if floor is None else int(floor)
    )


def parse_time(value: str, *, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC when it names no zone), or a duration before now
    (``90s``, ``15m``, ``2h``, ``7d``, ``1w``).

    Raises:
        InvalidInput: neither.
    """
    text = value.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative is not None:
        seconds = int(relative.group(1)) * _UNITS[relative.group(2)]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{value[:40]!r} is neither an ISO 8601 time nor a duration like 15m"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_types(values: list[str], known: set[str]) -> tuple[str, ...] | None:
    """Event types from repeated or comma-separated values; None for none.

    Raises:
        InvalidInput: a type no version of the log has.
    """
    types = [t.strip() for value in values for t in value.split(",") if t.strip()]
    for kind in types:
        if kind not in known:
            raise InvalidInput(
                f"unknown event type {kind[:60]!r}; types look like kv.set.v1"
            )
    return tuple(dict.fromkeys(types)) or None


def app_stream_id(stream: str) -> str | None:
    """The app id of an app's stream ``app-{id}``; None for any other stream."""
    return stream[4:] if stream.startswith("app-") and len(stream) > 4 else None
