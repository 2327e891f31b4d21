"""The parsed form of a document query and the constants of its index.

Private: import these names from ``picloud.store.docs_query``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final, Literal, NamedTuple

import msgspec

__all__ = [
    "ARRAY_SUFFIX",
    "MAX_DEPTH",
    "MAX_INDEXED_STR_BYTES",
    "MAX_PATH_BYTES",
    "RANGE_OPS",
    "Condition",
    "DocQuery",
    "DocValue",
    "Op",
    "Sort",
]

MAX_DEPTH: Final = 5
MAX_PATH_BYTES: Final = 256
MAX_INDEXED_STR_BYTES: Final = 512
# Suffix of the doc_values path of an array element: '$' cannot start a key of a
# filter path, so no filter path collides with it.
ARRAY_SUFFIX: Final = ".$"

Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in"]
RANGE_OPS: Final = frozenset({"gt", "gte", "lt", "lte"})


class Condition(msgspec.Struct, frozen=True):
    """One test of one field. ``operand`` is a tuple of values for ``in``."""

    path: tuple[str, ...]
    op: Op
    operand: Any


class Sort(msgspec.Struct, frozen=True):
    path: tuple[str, ...]
    descending: bool = False


class DocQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A validated find: every condition must hold; ``limit`` is always set."""

    conditions: tuple[Condition, ...] = ()
    sort: Sort | None = None
    limit: int


class DocValue(NamedTuple):
    """One ``doc_values`` row of a document (without its app, collection, id)."""

    path: str
    num: Decimal | None
    text: str | None
