"""Query parameters, declared once per endpoint: the OpenAPI document states
them and the wrapper reads them from the same :class:`Param`.

A value that does not parse is a 400 naming the parameter; an absent or
empty one is the parameter's default. Every list endpoint pages with
:func:`limit` and :func:`cursor`, so the rules and the messages are the same
everywhere: ``limit`` an integer from 1 to the list's maximum, ``cursor`` the
opaque string the previous page answered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from picloud.domain.paging import decode_cursor, encode_cursor
from picloud.domain.values import INT_MAX
from picloud.errors import InvalidInput

__all__ = [
    "Param",
    "check_known",
    "choice",
    "cursor",
    "encode_position",
    "flag",
    "limit",
    "moment",
    "position_cursor",
    "positive",
    "query_of",
    "read_query",
    "text",
]

_CURSOR_MESSAGE = "malformed cursor: pass the cursor a previous page answered"


@dataclass(frozen=True)
class Param:
    """One query parameter: its name, its JSON Schema, and how to read it."""

    name: str
    description: str
    schema: dict[str, Any]
    read: Callable[[str], Any]
    """Parse a present, non-empty value; raise InvalidInput naming the problem."""
    default: Any = None


def limit(*, default: int, maximum: int) -> Param:
    """The page size: an integer from 1 to ``maximum``."""
    message = f"limit must be an integer from 1 to {maximum}"

    def read(raw: str) -> int:
        if not _digits(raw, 9) or not 1 <= int(raw) <= maximum:
            raise InvalidInput(message)
        return int(raw)

    schema = {"type": "integer", "minimum": 1, "maximum": maximum}
    return Param("limit", f"page size (default {default})", schema, read, default)


def cursor() -> Param:
    """Where the previous page ended (a key or id), as the page answered it."""

    def read(raw: str) -> str:
        try:
            return decode_cursor(raw)
        except InvalidInput:
            raise InvalidInput(_CURSOR_MESSAGE) from None

    return Param("cursor", _CURSOR_DOC, {"type": "string"}, read, "")


def position_cursor() -> Param:
    """:func:`cursor` of a list that pages by log position (an integer)."""

    def read(raw: str) -> int:
        try:
            position = decode_cursor(raw)
        except InvalidInput:
            raise InvalidInput(_CURSOR_MESSAGE) from None
        if not _digits(position, 19) or int(position) > INT_MAX:
            raise InvalidInput(_CURSOR_MESSAGE)
        return int(position)

    return Param("cursor", _CURSOR_DOC, {"type": "string"}, read, None)


def encode_position(position: int | None) -> str | None:
    """The cursor :func:`position_cursor` reads back (None: no more pages)."""
    return None if position is None else encode_cursor(str(position))


_CURSOR_DOC = "the cursor the previous page answered; absent for the first page"


def _digits(raw: str, most: int) -> bool:
    # ASCII only ("²".isdigit() is true) and short: int() of a long run is slow.
    return 0 < len(raw) <= most and raw.isascii() and raw.isdigit()


def flag(name: str, description: str, *, default: bool | None = False) -> Param:
    """A boolean: ``true``/``1`` or ``false``/``0``."""

    def read(raw: str) -> bool:
        if raw in ("true", "1"):
            return True
        if raw in ("false", "0"):
            return False
        raise InvalidInput(f"{name} must be true or false")

    return Param(name, description, {"type": "boolean"}, read, default)


def choice(name: str, values: Sequence[str], description: str) -> Param:
    """One of ``values``; absent means all of them."""
    listed = " or ".join(values)

    def read(raw: str) -> str:
        if raw not in values:
            raise InvalidInput(f"{name} must be {listed}")
        return raw

    schema = {"type": "string", "enum": list(values)}
    return Param(name, description, schema, read)


def text(name: str, description: str, *, max_length: int) -> Param:
    """A string of at most ``max_length`` characters (``""`` when absent)."""

    def read(raw: str) -> str:
        if len(raw) > max_length:
            raise InvalidInput(f"{name} is longer than {max_length} characters")
        return raw

    schema = {"type": "string", "maxLength": max_length}
    return Param(name, description, schema, read, "")


def positive(name: str, description: str, *, maximum: int) -> Param:
    """An integer from 1 to ``maximum`` (None when absent)."""
    message = f"{name} must be an integer from 1 to {maximum}"

    def read(raw: str) -> int:
        if not _digits(raw, 19) or not 1 <= int(raw) <= maximum:
            raise InvalidInput(message)
        return int(raw)

    schema = {"type": "integer", "minimum": 1, "maximum": maximum}
    return Param(name, description, schema, read)


def moment(name: str, description: str) -> Param:
    """A time: RFC 3339 (``2026-01-02T03:04:05Z``; without an offset, UTC)."""

    def read(raw: str) -> datetime:
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            raise InvalidInput(
                f"{name} must be an RFC 3339 time (2026-01-02T03:04:05Z)"
            ) from None
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)

    schema = {"type": "string", "format": "date-time"}
    return Param(name, description, schema, read)


def check_known(request: web.Request, params: Sequence[Param]) -> None:
    """Refuse a query parameter the endpoint does not take (a typo in a
    filter would otherwise widen the answer silently)."""
    known = {p.name for p in params}
    for name in request.query:
        if name not in known:
            takes = ", ".join(sorted(known)) or "none"
            raise InvalidInput(
                f"unknown query parameter {name[:40]!r} (this endpoint takes: {takes})"
            )


_QUERY: web.RequestKey[dict[str, Any]] = web.RequestKey("query", dict)


def read_query(request: web.Request, params: Sequence[Param]) -> None:
    """Read the declared ``params`` of ``request``; :func:`query_of` answers them."""
    values: dict[str, Any] = {}
    for param in params:
        raw = request.query.get(param.name, "")
        values[param.name] = param.read(raw) if raw else param.default
    request[_QUERY] = values


def query_of(request: web.Request) -> Mapping[str, Any]:
    """The declared query parameters of ``request``, read and checked."""
    values = request[_QUERY]
    return values
