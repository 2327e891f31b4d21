"""Checking the arguments of SDK calls; shared by every SDK namespace."""

from __future__ import annotations

from typing import Any

from picloud.domain.paging import encode_cursor
from picloud.errors import SdkCallError

__all__ = ["limit_of", "options", "page_of"]

_DEFAULT_PAGE = 100
_MAX_PAGE = 1_000


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
