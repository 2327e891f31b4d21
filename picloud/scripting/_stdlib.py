"""Python halves of the standard library: pure functions over bytes and
JSON-like values. Malformed input raises :class:`StdlibError` with a message
fit for the script; nothing here touches Lua.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any
from urllib.parse import (
    parse_qsl,
    quote_from_bytes,
    unquote_to_bytes,
    urlencode,
    urlsplit,
)

# google-re2 ships no type information
import re2  # type: ignore[import-untyped]

__all__ = ["REGEX", "RegexCache", "StdlibError"]

MAX_RANDOM_BYTES = 65_536
MAX_FORMAT_CHARS = 256
MAX_PATTERN_BYTES = 4_096
MAX_QUERY_FIELDS = 1_000


class StdlibError(Exception):
    """A script's mistake; the message becomes the Lua error."""


# -- base64, hex, url ------------------------------------------------------------------


def b64_encode(data: bytes) -> bytes:
    return base64.b64encode(data)


def b64_decode(data: bytes) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as e:
        raise StdlibError("invalid base64 input") from e


def b64url_encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def b64url_decode(data: bytes) -> bytes:
    """URL-safe alphabet; the padding may be left out (as in JWTs)."""
    padded = data + b"=" * (-len(data) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except binascii.Error as e:
        raise StdlibError("invalid base64url input") from e


def hex_encode(data: bytes) -> bytes:
    return binascii.hexlify(data)


def hex_decode(data: bytes) -> bytes:
    try:
        return binascii.unhexlify(data)
    except binascii.Error as e:
        raise StdlibError("invalid hex input") from e


def url_encode(data: bytes) -> bytes:
    return quote_from_bytes(data, safe="").encode("ascii")


def url_decode(data: bytes) -> bytes:
    return unquote_to_bytes(data)


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise StdlibError(f"{what} is not valid UTF-8") from e


def url_parse_query(data: bytes) -> dict[str, Any]:
    """``a=1&b=2&b=3`` -> ``{a="1", b={"2", "3"}}``: repeated keys give arrays."""
    try:
        pairs = parse_qsl(
            _text(data, "the query"),
            keep_blank_values=True,
            max_num_fields=MAX_QUERY_FIELDS,
        )
    except ValueError as e:
        raise StdlibError(f"invalid query: {e}") from e
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key not in out:
            out[key] = value
        elif isinstance(out[key], list):
            out[key].append(value)
        else:
            out[key] = [out[key], value]
    return out


def url_parse(data: bytes) -> dict[str, Any]:
    text = _text(data, "the URL")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as e:
        raise StdlibError(f"invalid URL: {e}") from e
    fields: dict[str, Any] = {
        "scheme": parts.scheme,
        "host": parts.hostname,
        "port": port,
        "user": parts.username,
        "password": parts.password,
        "path": parts.path,
        "query": parts.query,
        "fragment": parts.fragment,
        "params": url_parse_query(parts.query.encode()),
    }
    return {k: v for k, v in fields.items() if v is not None}


def url_build_query(value: Any) -> bytes:
    """A table of scalars (or arrays of scalars) -> ``a=1&b=x%20y``."""
    if not isinstance(value, dict):
        raise StdlibError("expected a table of names to values")
    pairs: list[tuple[str, str]] = []
    for key, item in value.items():
        for one in item if isinstance(item, list) else [item]:
            if isinstance(one, bool):
                pairs.append((key, "true" if one else "false"))
            elif isinstance(one, str | int | float):
                pairs.append((key, str(one)))
            else:
                raise StdlibError(f"the value of {key!r} is not a string or number")
    return urlencode(pairs).encode("ascii")


# -- regex -----------------------------------------------------------------------------


class RegexCache:
    """Compiled RE2 patterns, least recently used first out.

    RE2 matches in time linear in the subject and bounds its own memory
    (``max_mem`` per pattern; past it a match falls back to a slower, still
    linear engine), so no pattern or subject can make a call hang. One cache
    serves every runtime of the process, so its memory is bounded by
    ``size * max_mem`` however many apps compile patterns (compiled patterns
    are immutable: sharing them shares nothing of an app).
    """

    def __init__(self, size: int = 128, max_mem: int = 1 << 20) -> None:
        self._size = size
        self._patterns: OrderedDict[bytes, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._options = re2.Options()
        self._options.log_errors = False
        self._options.max_mem = max_mem

    def get(self, pattern: bytes) -> Any:
        with self._lock:
            found = self._patterns.get(pattern)
            if found is not None:
                self._patterns.move_to_end(pattern)
                return found
        if len(pattern) > MAX_PATTERN_BYTES:
            raise StdlibError(f"the pattern is longer than {MAX_PATTERN_BYTES} bytes")
        try:
            compiled = re2.compile(pattern, self._options)
        except re2.error as e:
            detail = e.args[0] if e.args else "invalid"
            if isinstance(detail, bytes):
                detail = detail.decode("utf-8", "replace")
            raise StdlibError(f"invalid pattern: {detail}") from e
        with self._lock:
            self._patterns[pattern] = compiled
            if len(self._patterns) > self._size:
                self._patterns.popitem(last=False)
        return compiled


REGEX = RegexCache()


def _match_table(m: Any, compiled: Any) -> dict[str, Any]:
    groups = [g if g is not None else False for g in m.groups()]
    named = {
        (k.decode() if isinstance(k, bytes) else k): (
            m.group(i) if m.group(i) is not None else False
        )
        for k, i in compiled.groupindex.items()
    }
    return {
        "text": m.group(0),
        "start": m.start() + 1,
        "stop": m.end(),
        "groups": groups,
        "named": named,
    }


def _start(init: int, subject: bytes) -> int:
    if init < 0:
        init = max(len(subject) + init + 1, 1)
    return max(init, 1) - 1


def re_match(cache: RegexCache, pattern: bytes, subject: bytes, init: int) -> Any:
    compiled = cache.get(pattern)
    m = compiled.search(subject, _start(init, subject))
    return None if m is None else _match_table(m, compiled)


def re_find(
    cache: RegexCache, pattern: bytes, subject: bytes, init: int
) -> tuple[int, int] | None:
    m = cache.get(pattern).search(subject, _start(init, subject))
    return None if m is None else (m.start() + 1, m.end())


def re_find_all(
    cache: RegexCache, pattern: bytes, subject: bytes, limit: int
) -> list[dict[str, Any]]:
    compiled = cache.get(pattern)
    out = []
    for m in compiled.finditer(subject):
        out.append(_match_table(m, compiled))
        if limit and len(out) >= limit:
            break
    return out


def re_replace(
    cache: RegexCache, pattern: bytes, subject: bytes, repl: bytes, count: int
) -> tuple[bytes, int]:
    """``repl`` may use ``\\1`` and ``\\g<name>``; ``count`` 0 replaces all."""
    try:
        result: tuple[bytes, int] = cache.get(pattern).subn(
            repl, subject, max(count, 0)
        )
    except (IndexError, re2.error) as e:
        raise StdlibError(f"invalid replacement: {e}") from e
    return result


def re_split(
    cache: RegexCache, pattern: bytes, subject: bytes, maxsplit: int
) -> list[bytes]:
    parts = cache.get(pattern).split(subject, max(maxsplit, 0))
    return [p if p is not None else b"" for p in parts]


# -- time and random -------------------------------------------------------------------


def time_now() -> bytes:
    """RFC 3339 in UTC with milliseconds, e.g. ``2024-05-01T12:00:00.123Z``:
    ``time.format`` of the clock ``time.unix`` reads, so ``time.parse`` of it
    is that number to the millisecond."""
    return time_format(time.time(), None)


def time_unix() -> float:
    """Seconds since the Unix epoch, with a fraction: the value for arithmetic."""
    return time.time()


def time_format(t: float | None, fmt: bytes | None) -> bytes:
    """strftime ``fmt`` (UTC) of unix time ``t`` (default now); ISO-8601 without fmt."""
    try:
        moment = datetime.fromtimestamp(time.time() if t is None else t, UTC)
    except (OverflowError, ValueError, OSError) as e:
        raise StdlibError("the time is out of range") from e
    if fmt is None:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()
    if len(fmt) > MAX_FORMAT_CHARS:
        raise StdlibError(f"the format is longer than {MAX_FORMAT_CHARS} bytes")
    try:
        return moment.strftime(_text(fmt, "the format")).encode()
    except ValueError as e:
        raise StdlibError(f"invalid format: {e}") from e


def time_parse(text: bytes) -> float:
    """ISO-8601 (``Z`` or an offset; without one, UTC) -> unix seconds."""
    try:
        moment = datetime.fromisoformat(_text(text, "the time"))
    except ValueError as e:
        raise StdlibError("invalid ISO-8601 time") from e
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def rand_int(m: int | None, n: int | None) -> int:
    """Like math.random: ``int(m)`` is in [1, m], ``int(m, n)`` in [m, n]."""
    if m is None:
        return secrets.randbits(63)
    low, high = (1, m) if n is None else (m, n)
    if low > high:
        raise StdlibError("the interval is empty")
    return low + secrets.randbelow(high - low + 1)


def rand_float() -> float:
    return secrets.SystemRandom().random()


def rand_uuid() -> bytes:
    return str(uuid.uuid4()).encode()


def rand_bytes(n: int) -> bytes:
    """``n`` random bytes as hex (so the result is always valid text)."""
    if not 0 <= n <= MAX_RANDOM_BYTES:
        raise StdlibError(f"the count must be between 0 and {MAX_RANDOM_BYTES}")
    return secrets.token_hex(n).encode()
