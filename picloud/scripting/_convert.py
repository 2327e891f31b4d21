"""The Python side of the Lua/Python boundary.

Python values go to Lua as a *shape* (one byte per node: ``s`` string, ``n``
number, ``t``/``f`` booleans, ``z`` null, ``{``/``[`` containers) and a flat
list of scalars (strings as bytes, numbers, container sizes, object keys);
``bridge.lua`` rebuilds them inside the sandbox. Lua values come back as JSON
text. Both directions are bounded in size and depth.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import msgspec

from picloud.errors import ScriptRuntimeError

from .context import ScriptResponse

__all__ = ["Shaped", "ValueLimitHit", "response_from", "shape_value"]

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_S, _N, _T, _F, _Z, _O, _A = b"sntfz{["
_BAD_HEADER = re.compile(r"[\r\n\x00]")
_decode = msgspec.json.decode


class ValueLimitHit(Exception):
    """A value is over a size or depth limit; ``limit`` names which."""

    def __init__(self, limit: str) -> None:
        super().__init__(limit)
        self.limit = limit


class Shaped(NamedTuple):
    shape: bytes
    vals: list[bytes | int | float]
    lua_bytes: int
    """Upper estimate of the Lua heap the flat table of ``vals`` needs."""


class _Shaper:
    __slots__ = ("lua", "max_bytes", "max_depth", "shape", "size", "vals")

    def __init__(self, max_bytes: int, max_depth: int) -> None:
        self.shape = bytearray()
        self.vals: list[bytes | int | float] = []
        self.size = 0
        self.lua = 256
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    def text(self, b: bytes) -> None:
        self.shape.append(_S)
        self.vals.append(b)
        self.size += len(b) + 2
        self.lua += len(b) + 56
        if self.size > self.max_bytes:
            raise ValueLimitHit("value_bytes")

    def walk(self, v: object, depth: int) -> None:  # noqa: C901 - one branch per JSON type
        if v is None:
            self.shape.append(_Z)
            self.size += 4
        elif v is True or v is False:
            self.shape.append(_T if v else _F)
            self.size += 5
        elif isinstance(v, str):
            self.text(v.encode())
        elif isinstance(v, bytes):
            self.text(v)
        elif isinstance(v, int | float):
            if isinstance(v, int) and not _INT_MIN <= v <= _INT_MAX:
                v = float(v)
            self.shape.append(_N)
            self.vals.append(v)
            self.size += 8
            self.lua += 16
        elif isinstance(v, dict):
            self.container(_O, len(v), depth)
            for key, item in v.items():
                if not isinstance(key, str):
                    raise TypeError(
                        f"object keys must be strings, not {type(key).__name__}"
                    )
                kb = key.encode()
                self.vals.append(kb)
                self.size += len(kb) + 4
                self.lua += len(kb) + 56
                self.walk(item, depth + 1)
        elif isinstance(v, list | tuple):
            self.container(_A, len(v), depth)
            for item in v:
                self.walk(item, depth + 1)
        else:
            raise TypeError(f"a {type(v).__name__} value cannot be passed to Lua")

    def container(self, code: int, count: int, depth: int) -> None:
        if depth > self.max_depth:
            raise ValueLimitHit("value_depth")
        self.shape.append(code)
        self.vals.append(count)
        self.size += 2 + count
        self.lua += 16 + 40 * count
        if self.size > self.max_bytes:
            raise ValueLimitHit("value_bytes")


def shape_value(value: object, *, max_bytes: int, max_depth: int) -> Shaped:
    """Flatten a JSON-like value (bytes allowed as strings) for ``I.build``.

    Raises:
        ValueLimitHit: over ``max_bytes`` (measured as JSON) or ``max_depth``.
        TypeError: a value that is not JSON-like.
    """
    s = _Shaper(max_bytes, max_depth)
    s.walk(value, 1)
    return Shaped(bytes(s.shape), s.vals, s.lua + 16 * len(s.vals) + len(s.shape))


# -- responses (SPEC.md §1) ------------------------------------------------------------

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"


def _headers(raw: bytes, name: str) -> dict[str, str]:
    decoded = _decode(raw)
    if not isinstance(decoded, dict):
        raise ScriptRuntimeError(f"{name}: the response headers must be a table")
    out: dict[str, str] = {}
    for key, value in decoded.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ScriptRuntimeError(
                f"{name}: the response header {key!r} must be a string"
            )
        text = str(value)
        if not key or _BAD_HEADER.search(key) or _BAD_HEADER.search(text):
            raise ScriptRuntimeError(f"{name}: invalid response header {key!r}")
        out[key] = text
    return out


def _with_type(headers: dict[str, str], content_type: str) -> dict[str, str]:
    if not any(k.lower() == "content-type" for k in headers):
        headers["content-type"] = content_type
    return headers


def response_from(parts: tuple[Any, ...], name: str) -> tuple[ScriptResponse, Any]:
    """The response and the JSON-like value from what ``finish`` returned.

    ``parts`` is ``("nil",)``, ``("string", s)``, ``("json", text)`` or
    ``("response", status, headers_json, body, body_is_json)``.
    """
    kind = parts[0]
    if kind == b"nil":
        return ScriptResponse(status=204, headers={}, body=b""), None
    if kind == b"string":
        body = parts[1]
        value = body.decode("utf-8", "replace")
        return ScriptResponse(
            status=200, headers={"content-type": TEXT}, body=body
        ), value
    if kind == b"json":
        text = parts[1]
        return ScriptResponse(
            status=200, headers={"content-type": JSON}, body=text
        ), _decode(text)
    status, raw_headers, body, is_json = parts[1:5]
    if not 100 <= status <= 599:
        raise ScriptRuntimeError(
            f"{name}: the response status must be between 100 and 599"
        )
    headers = _headers(raw_headers, name)
    body_value: Any = _decode(body) if is_json else body.decode("utf-8", "replace")
    if body:
        headers = _with_type(headers, JSON if is_json else TEXT)
    value = {"status": status, "headers": dict(headers), "body": body_value}
    return ScriptResponse(status=status, headers=headers, body=body), value
