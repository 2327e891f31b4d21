"""What Postgres can store and scripts can read: checked where a value enters.

Postgres text cannot hold the NUL character, and jsonb refuses the escape
``\\u0000``; one such value in a group commit would fail every command of
the batch. A stored value is also read back by scripts, so it keeps to what
the sandbox can read (``PICLOUD_SCRIPT_MAX_VALUE_DEPTH`` levels of nesting,
integers that fit a Lua integer). Every key, id, name, prefix and JSON value
a script or a caller hands in is checked here first, with an error naming
it and where: a 400 for the API, a Lua error for a script.
"""

from __future__ import annotations

import math
import re
from typing import Any

from picloud.errors import InvalidInput

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "check_json",
    "check_text",
    "check_value",
    "without_nul",
]

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
"""A Lua integer is 64 bits; msgspec cannot write anything past 2**64 either."""
_NUL_ESCAPE = re.compile(rb"(\\+)u0000")


def check_text(text: str, what: str) -> str:
    """``text`` if it holds no NUL character; else InvalidInput naming ``what``."""
    if "\0" in text:
        raise InvalidInput(f"{what} contains a NUL character, which cannot be stored")
    return text


def check_json(data: bytes, what: str) -> bytes:
    """``data`` (JSON text), if no string in it holds a NUL character."""
    for match in _NUL_ESCAPE.finditer(data):
        if len(match.group(1)) % 2 == 1:  # an escaped backslash is not an escape
            raise InvalidInput(
                f"{what} contains a NUL character (\\u0000), which cannot be stored"
            )
    return data


def without_nul(text: str) -> str:
    """``text`` fit to store, for what is recorded rather than refused (a
    script's error message and log lines): NUL becomes U+FFFD."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def check_value(value: Any, *, max_depth: int, level: int = 1) -> None:
    """Refuse a decoded JSON value that could not be stored or read back.

    ``level`` is the nesting level at which a script reads the value's top
    (1: the value itself, as ``kv.get`` answers it; 2: a document's data,
    which ``docs.get`` answers inside its envelope). A container deeper than
    ``max_depth`` counted that way, a string or object key with a NUL, an
    integer outside int64 or a non-finite float is an InvalidInput naming
    its place (``$.a[2].b``).

    Iterative, so a value nested past Python's recursion limit is refused
    like any other, not with a RecursionError.
    """
    # A place is (parent place, key or index): rendered only for the message.
    stack: list[tuple[Any, int, _Place]] = [(value, level, None)]
    while stack:
        item, depth, place = stack.pop()
        if isinstance(item, dict | list) and depth > max_depth:
            allowed = max_depth - level + 1
            raise InvalidInput(
                f"{_render(place)}: nested deeper than {allowed} levels "
                "(the most a script can read)"
            )
        if isinstance(item, dict):
            for key, child in item.items():
                if "\0" in key:
                    raise InvalidInput(
                        f"a key at {_render(place)} contains a NUL character"
                    )
                stack.append((child, depth + 1, (place, key)))
        elif isinstance(item, list):
            stack.extend((child, depth + 1, (place, n)) for n, child in enumerate(item))
        else:
            _scalar(item, place)


_Place = tuple["_Place", str | int] | None


def _render(place: _Place) -> str:
    parts: list[str] = []
    while place is not None:
        place, key = place
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key[:40]}")
    shown = "$" + "".join(reversed(parts))
    return shown if len(shown) <= 120 else "…" + shown[-119:]


def _scalar(item: Any, place: _Place) -> None:
    if isinstance(item, str):
        if "\0" in item:
            raise InvalidInput(
                f"the string at {_render(place)} contains a NUL character"
            )
    elif isinstance(item, bool):
        return
    elif isinstance(item, int) and not INT_MIN <= item <= INT_MAX:
        raise InvalidInput(
            f"{_render(place)}: the integer is outside the 64-bit range scripts "
            "can hold"
        )
    elif isinstance(item, float) and not math.isfinite(item):
        raise InvalidInput(f"{_render(place)}: numbers must be finite")
