"""Checking the arguments of SDK calls; shared by every SDK namespace."""

from __future__ import annotations

import re
from typing import Any

from picloud.errors import SdkCallError
from picloud.store.paging import encode_cursor

__all__ = ["check_collection", "limit_of", "options", "page_of"]

_COLLECTION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_DEFAULT_PAGE = 100
_MAX_PAGE = 1_000


def check_collection(name: object) -> str:
    if not isinstance(name, str) or not _COLLECTION.match(name):
        raise SdkCallError(
            f"invalid collection name {str(name)[:80]!r}: use 1-64 letters, digits, "
            "_ . or -, starting with a letter, digit or _"
        )
    return name


def page_of(items: list[Any], last: str | None) -> dict[str, Any]:
    """A page for Lua: no ``cursor`` key at the end, so ``page.cursor == nil``."""
    if last is None:
        return {"items": items}
    return {"items": items, "cursor": encode_cursor(last)}


def options(args: list[Any], index: int, allowed: set[str]) -> dict[str, Any]:
    opts = args[index] if len(args) > index and args[index] is not None else {}
    if not isinstance(opts, dict):
        raise SdkCallError("options must be a table")
    unknown = set(opts) - allowed
    if unknown:
        known = ", ".join(sorted(allowed))
        raise SdkCallError(
            f"unknown option {sorted(unknown)[0]!r}; options are {known}"
        )
    return opts


def limit_of(value: object) -> int:
    if value is None:
        return _DEFAULT_PAGE
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= _MAX_PAGE
    ):
        raise SdkCallError(f"limit must be an integer from 1 to {_MAX_PAGE}")
    return value
