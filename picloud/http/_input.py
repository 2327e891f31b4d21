"""Hostile input, refused at the edge of the admin API before it reaches a
handler, the store or an actor.

- :func:`check_request`: the path, the query string and the headers must be
  valid UTF-8 (percent-decoded, where they are encoded) and hold no NUL
  character (Postgres ``text`` refuses it: it would be a 500 deep inside).
- :func:`read_body`: at most ``max_request_bytes`` (413), within
  ``PICLOUD_BODY_READ_TIMEOUT_MS`` (408: a stalled client does not hold a
  connection for minutes), and readable (a broken chunked, compressed or
  form body is a 400).
- :func:`decode_json`: well-formed JSON within the one nesting limit
  scripts read (``PICLOUD_SCRIPT_MAX_VALUE_DEPTH``) and the value rules of
  :func:`picloud.domain.values.check_value`, then strictly of the body type.

Every refusal is a RequestError, so the error middleware answers it as a 4xx
with the JSON error body.
"""

from __future__ import annotations

import asyncio
import typing
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

import msgspec
from aiohttp import web

from picloud.config import Settings
from picloud.domain.values import check_text, check_value
from picloud.errors import InvalidInput, PayloadTooLarge, RequestError, RequestTimeout
from picloud.http.state import SERVICES

__all__ = [
    "ReadInside",
    "bounded_read",
    "check_request",
    "decode_json",
    "read_body",
    "read_within",
]

T = TypeVar("T")


@dataclass(frozen=True)
class ReadInside:
    """``Annotated`` metadata of a body type that scripts read wrapped
    ``levels`` deep (a document's data inside its envelope): the body may
    nest that much less."""

    levels: int


def check_request(request: web.BaseRequest, *, nul: bool = True) -> None:
    """Refuse invalid UTF-8 in the path, query string or headers, and (unless
    ``nul`` is False: an app's script may take any text) a NUL."""
    url = request.rel_url
    _utf8(unquote_to_bytes(url.raw_path), "the path")
    if nul:
        check_text(request.path, "the path")
    if url.raw_query_string:
        query = url.raw_query_string.replace("+", " ")
        _utf8(unquote_to_bytes(query), "the query string")
        for name, value in request.query.items() if nul else ():
            check_text(name, "a query parameter name")
            check_text(value, f"the query parameter {name[:40]!r}")
    for header, raw in request.raw_headers:
        try:
            raw.decode()
        except UnicodeDecodeError:
            shown = header.decode("ascii", "replace")[:40]
            raise InvalidInput(f"the header {shown!r} is not valid UTF-8") from None


def _utf8(raw: bytes, what: str) -> None:
    try:
        raw.decode()
    except UnicodeDecodeError:
        raise InvalidInput(f"{what} is not valid UTF-8 once percent-decoded") from None


async def bounded_read(request: web.Request, reading: Awaitable[T]) -> T:
    """Await ``reading`` (of the request's body) within the body read timeout."""
    return await read_within(request.app[SERVICES].settings, reading)


async def read_within(settings: Settings, reading: Awaitable[T]) -> T:
    """Await ``reading`` (of a request's body) within the body read timeout.

    Raises:
        RequestTimeout: the body did not arrive in time (408).
        PayloadTooLarge: over ``max_request_bytes`` (413).
        RequestError: the body's framing, compression or form data is broken
            (400).
    """
    seconds = settings.body_read_timeout_ms / 1000
    try:
        async with asyncio.timeout(seconds):
            return await reading
    except TimeoutError:
        raise RequestTimeout(
            f"the request body did not arrive within {seconds:g}s"
        ) from None
    except web.HTTPRequestEntityTooLarge:
        limit = settings.max_request_bytes
        raise PayloadTooLarge(f"request body larger than {limit} bytes") from None
    except (web.RequestPayloadError, ValueError):
        # Broken framing or compression, or form data that does not parse (a
        # missing boundary, bytes that are not UTF-8): aiohttp's messages
        # quote the body; the caller learns what, not the bytes.
        raise RequestError(
            "the request body could not be read: broken chunked, compressed or "
            "form data"
        ) from None


async def read_body(request: web.Request) -> bytes:
    """The request's body, read as :func:`bounded_read` says."""
    return await bounded_read(request, request.read())


def decode_json(raw: bytes, body_type: Any, *, max_depth: int) -> Any:
    """``raw`` as ``body_type``; InvalidInput names what is wrong and where."""
    if not raw:
        raise InvalidInput("a JSON body is required")
    level = 1 + sum(m.levels for m in _metadata(body_type, ReadInside))
    try:
        value = msgspec.json.decode(raw)
    except RecursionError:
        allowed = max_depth - level + 1
        raise InvalidInput(
            f"nested deeper than {allowed} levels (the most a script can read)"
        ) from None
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise InvalidInput(f"malformed JSON: {e}") from None
    check_value(value, max_depth=max_depth, level=level)
    if _bare(body_type) is Any:  # any JSON value (a KV value): decoded already
        return value
    try:
        return msgspec.json.decode(raw, type=body_type, strict=True)
    except msgspec.ValidationError as e:
        raise InvalidInput(_field_message(str(e))) from None


def _bare(body_type: Any) -> Any:
    annotated = typing.get_origin(body_type) is typing.Annotated
    return body_type.__origin__ if annotated else body_type


def _metadata(body_type: Any, kind: type[T]) -> list[T]:
    if typing.get_origin(body_type) is not typing.Annotated:
        return []
    return [m for m in body_type.__metadata__ if isinstance(m, kind)]


def _field_message(message: str) -> str:
    # msgspec says "Expected `str`, got `int` - at `$.name`"; name the field first.
    text, sep, where = message.rpartition(" - at `$.")
    if not sep:
        return message
    return f"{where.rstrip('`')}: {text}"
