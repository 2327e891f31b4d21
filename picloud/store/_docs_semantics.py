"""The reference semantics of the query DSL and the index rows of a document.

Private: import these names from ``picloud.store.docs_query``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

import msgspec

from picloud.store._docs_model import (
    ARRAY_SUFFIX,
    MAX_DEPTH,
    MAX_INDEXED_STR_BYTES,
    MAX_PATH_BYTES,
    Condition,
    DocQuery,
    DocValue,
    Op,
)

__all__ = ["doc_index_rows", "matches", "sort_key"]


class _Missing:
    __slots__ = ()


_MISSING: Final = _Missing()
_RANK_NULL, _RANK_NUMBER, _RANK_STRING, _RANK_OBJECT, _RANK_ARRAY, _RANK_BOOL = range(6)


def _decoded(data: Any) -> Any:
    if isinstance(data, bytes | bytearray | memoryview | msgspec.Raw):
        return msgspec.json.decode(bytes(data))
    return data


def _resolve(data: Any, path: tuple[str, ...]) -> Any:
    current = data
    for key in path:
        if not isinstance(current, Mapping) or key not in current:
            return _MISSING
        current = current[key]
    return current


def _rank(value: Any) -> int:
    if value is None or value is _MISSING:
        return _RANK_NULL
    if isinstance(value, bool):
        return _RANK_BOOL
    if isinstance(value, int | float | Decimal):
        return _RANK_NUMBER
    if isinstance(value, str):
        return _RANK_STRING
    if isinstance(value, Mapping):
        return _RANK_OBJECT
    if isinstance(value, list | tuple):
        return _RANK_ARRAY
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _number(value: int | float | Decimal) -> int | Decimal:
    """A number as Postgres numeric holds it: a float is its shortest decimal."""
    return Decimal(repr(value)) if isinstance(value, float) else value


def _same(a: Any, b: Any) -> bool:
    """Typed deep equality: 1 == 1.0, true != 1, object keys in any order."""
    rank = _rank(a)
    if rank != _rank(b):
        return False
    if rank == _RANK_NUMBER:
        return _number(a) == _number(b)
    if rank == _RANK_OBJECT:
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if rank == _RANK_ARRAY:
        return len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


def _equals(value: Any, operand: Any) -> bool:
    if value is _MISSING:
        return operand is None
    if _same(value, operand):
        return True
    return isinstance(value, list | tuple) and any(_same(e, operand) for e in value)


def _scalar_key(value: Any) -> Any:
    return _number(value) if _rank(value) == _RANK_NUMBER else value


def _compares(value: Any, op: Op, operand: Any) -> bool:
    rank = _rank(operand)
    bound = _scalar_key(operand)
    candidates = value if isinstance(value, list | tuple) else (value,)
    for candidate in candidates:
        if _rank(candidate) != rank:
            continue
        key = _scalar_key(candidate)
        if (
            (op == "gt" and key > bound)
            or (op == "gte" and key >= bound)
            or (op == "lt" and key < bound)
            or (op == "lte" and key <= bound)
        ):
            return True
    return False


def _holds(condition: Condition, data: Any) -> bool:
    value = _resolve(data, condition.path)
    if condition.op == "eq":
        return _equals(value, condition.operand)
    if condition.op == "ne":
        return not _equals(value, condition.operand)
    if condition.op == "in":
        return any(_equals(value, item) for item in condition.operand)
    return _compares(value, condition.op, condition.operand)


def matches(query: DocQuery, data: Any) -> bool:
    """Whether a document (a JSON-like value or JSON bytes) passes the filter."""
    data = _decoded(data)
    return all(_holds(c, data) for c in query.conditions)


class _Key:
    """Sort key: (type rank, value) in the query's direction, then id ascending."""

    __slots__ = ("descending", "doc_id", "rank", "value")

    def __init__(self, doc_id: str, rank: int, value: Any, *, descending: bool) -> None:
        self.doc_id = doc_id
        self.rank = rank
        self.value = value
        self.descending = descending

    def __lt__(self, other: _Key) -> bool:
        mine, theirs = (self.rank, self.value), (other.rank, other.value)
        if mine != theirs:
            return bool(mine > theirs) if self.descending else bool(mine < theirs)
        return self.doc_id < other.doc_id


def sort_key(query: DocQuery) -> Callable[[str, Any], Any]:
    """A key function of (doc_id, data) giving the total order of ``query``.

    Without ``$sort`` that is id order (creation order).
    """
    sort = query.sort
    if sort is None:
        return lambda doc_id, data: doc_id

    def key(doc_id: str, data: Any) -> _Key:
        value = _resolve(_decoded(data), sort.path)
        rank = _rank(value)
        scalar = _scalar_key(value) if rank in (1, 2, 5) else None
        return _Key(doc_id, rank, scalar, descending=sort.descending)

    return key


# -- index rows ------------------------------------------------------------------


def doc_index_rows(data: Any) -> list[DocValue]:
    """The doc_values rows of a document: each addressable scalar leaf, once.

    Numbers and strings at paths of at most 5 keys (none empty, containing '.',
    or starting with '$'; at most 256 bytes), directly or as elements of an
    array held there (path + ARRAY_SUFFIX). Strings over 512 bytes give a row
    with neither num nor text (a candidate to recheck). Duplicates collapse.
    """
    rows: dict[DocValue, None] = {}
    data = _decoded(data)
    if isinstance(data, Mapping):
        _walk(data, "", 1, rows)
    return list(rows)


def _walk(
    obj: Mapping[str, Any], prefix: str, depth: int, rows: dict[DocValue, None]
) -> None:
    for key, value in obj.items():
        if not key or "." in key or key.startswith("$"):
            continue
        path = f"{prefix}.{key}" if prefix else key
        if len(path.encode()) > MAX_PATH_BYTES:
            continue
        if isinstance(value, Mapping):
            if depth < MAX_DEPTH:
                _walk(value, path, depth + 1, rows)
        elif isinstance(value, list | tuple):
            for element in value:
                _add_scalar(path + ARRAY_SUFFIX, element, rows)
        else:
            _add_scalar(path, value, rows)


def _add_scalar(path: str, value: Any, rows: dict[DocValue, None]) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        rows[DocValue(path, Decimal(_number(value)), None)] = None
    elif isinstance(value, str):
        short = len(value.encode()) <= MAX_INDEXED_STR_BYTES
        rows[DocValue(path, None, value if short else None)] = None
