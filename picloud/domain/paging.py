"""Opaque keyset cursors shared by the SDK's and the admin API's list calls."""

from __future__ import annotations

import base64
import binascii

from picloud.errors import InvalidInput

__all__ = ["decode_cursor", "encode_cursor"]


def encode_cursor(last: str | None) -> str | None:
    """The cursor after ``last`` (None: there is nothing after this page)."""
    return None if last is None else base64.urlsafe_b64encode(last.encode()).decode()


def decode_cursor(cursor: object) -> str:
    """The key or id to continue after; "" for the first page.

    Raises:
        InvalidInput: ``cursor`` is not a string a list call returned.
    """
    if cursor is None or cursor == "":
        return ""
    if not isinstance(cursor, str):
        raise InvalidInput("cursor must be the string a previous list returned")
    try:
        last = base64.b64decode(cursor.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("malformed cursor") from None
    if "\0" in last:  # no key or id holds one; Postgres text would refuse it
        raise InvalidInput("malformed cursor")
    return last
