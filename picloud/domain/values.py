"""What Postgres can store: checked where a value enters, before any commit.

Postgres text cannot hold the NUL character, and jsonb refuses the escape
``\\u0000``; one such value in a group commit would fail every command of
the batch. So every key, id, name, prefix and JSON value a script or a
caller hands in is checked here first, with an error naming it.
"""

from __future__ import annotations

import re

from picloud.errors import InvalidInput

__all__ = ["check_json", "check_text", "without_nul"]

_NUL_ESCAPE = re.compile(rb"(\\+)u0000")


def check_text(value: str, what: str) -> str:
    """``value``, if it holds no NUL character."""
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character, which cannot be stored")
    return value


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
