"""The document query DSL of SPEC.md §3: parse, evaluate, order, index.

Pure (no asyncpg): :func:`parse_query` validates a filter once into a
:class:`DocQuery`; :func:`matches` and :func:`sort_key` are the reference
semantics that ``docs_sql.find_sql`` reproduces in SQL (the tests hold them
equal); :func:`doc_index_rows` gives the ``doc_values`` rows of one document.

Semantics (MongoDB's, for this subset):
- a path is 1 to 5 object keys (none empty or starting with '$'; at most 256
  bytes); an array or a scalar in the middle of a path, or an absent key,
  means *missing*; no numeric indexing into arrays;
- comparisons are type-bracketed: a range operand (number, string or boolean)
  only meets values of its own type; numbers compare by value (``1 == 1.0``,
  exactly as Postgres ``numeric`` does), never equal to booleans; strings in
  codepoint order; ``false < true``;
- a field holding an array matches when it, or any element of it, matches;
  equality to ``null`` and ``$ne`` also match a missing field;
- the order of ``$sort``: null and missing < numbers < strings < objects <
  arrays < booleans; objects and arrays compare by type only; equal keys are
  ordered by document id ascending, in both directions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from picloud.errors import InvalidInput
from picloud.store._docs_model import (
    ARRAY_SUFFIX,
    MAX_DEPTH,
    MAX_INDEXED_STR_BYTES,
    MAX_PATH_BYTES,
    RANGE_OPS,
    Condition,
    DocQuery,
    DocValue,
    Op,
    Sort,
)
from picloud.store._docs_semantics import doc_index_rows, matches, sort_key

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
    "doc_index_rows",
    "matches",
    "parse_query",
    "sort_key",
]

_MAX_VALUE_DEPTH: Final = 64
_OPERATORS: Final[dict[str, Op]] = {
    "$eq": "eq",
    "$ne": "ne",
    "$gt": "gt",
    "$gte": "gte",
    "$lt": "lt",
    "$lte": "lte",
    "$in": "in",
}
_SUPPORTED: Final = ", ".join(_OPERATORS)


# -- parsing ---------------------------------------------------------------------


def parse_query(raw: Any, *, max_in: int, max_limit: int) -> DocQuery:
    """Validate a filter (``$sort`` and ``$limit`` inside it) into a DocQuery.

    ``None`` or an empty table is the empty filter. Raises InvalidInput naming
    the problem and where it is, for every malformed filter.
    """
    if raw is None or (isinstance(raw, Mapping | list | tuple) and not raw):
        return DocQuery(limit=max_limit)
    if not isinstance(raw, Mapping):
        raise _invalid("the filter", f"must be a table of fields, got {_kind(raw)}")
    conditions: list[Condition] = []
    sort: Sort | None = None
    limit = max_limit
    for key, value in raw.items():
        if not isinstance(key, str):
            raise _invalid("the filter", f"keys must be strings, got {_kind(key)}")
        if key == "$sort":
            sort = _parse_sort(value)
        elif key == "$limit":
            limit = _parse_limit(value, max_limit)
        elif key.startswith("$"):
            raise _invalid(
                repr(key), f"unknown operator (supported: {_SUPPORTED}, $sort, $limit)"
            )
        else:
            conditions.extend(_parse_field(key, value, max_in))
    return DocQuery(conditions=tuple(conditions), sort=sort, limit=limit)


def _invalid(where: str, problem: str) -> InvalidInput:
    return InvalidInput(f"invalid filter at {where}: {problem}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _parse_path(field: str) -> tuple[str, ...]:
    where = repr(field)
    segments = tuple(field.split("."))
    if len(segments) > MAX_DEPTH:
        raise _invalid(where, f"path has {len(segments)} keys, at most {MAX_DEPTH}")
    if len(field.encode()) > MAX_PATH_BYTES:
        raise _invalid(where, f"path is longer than {MAX_PATH_BYTES} bytes")
    for segment in segments:
        if not segment:
            raise _invalid(where, "path has an empty key")
        if segment.startswith("$"):
            raise _invalid(where, f"path key {segment!r} starts with '$'")
        if "\x00" in segment:
            raise _invalid(where, "path contains a NUL character")
    return segments


def _parse_sort(value: Any) -> Sort:
    if not isinstance(value, str):
        raise _invalid(
            "'$sort'",
            f"must be a field name (or '-field' for descending), got {_kind(value)}",
        )
    descending = value.startswith("-")
    field = value[1:] if descending else value
    return Sort(_parse_path(field), descending)


def _parse_limit(value: Any, max_limit: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid("'$limit'", f"must be an integer, got {_kind(value)}")
    if not 1 <= value <= max_limit:
        raise _invalid("'$limit'", f"must be between 1 and {max_limit}, got {value}")
    return value


def _parse_field(field: str, value: Any, max_in: int) -> list[Condition]:
    path = _parse_path(field)
    where = repr(field)
    if not isinstance(value, Mapping) or not any(_is_op(k) for k in value):
        return [Condition(path, "eq", _literal(value, where, 0))]
    if not all(_is_op(k) for k in value):
        raise _invalid(where, "an object mixes '$' operators and plain keys")
    return [
        _parse_operator(path, where, name, operand, max_in)
        for name, operand in value.items()
    ]


def _is_op(key: Any) -> bool:
    return isinstance(key, str) and key.startswith("$")


def _parse_operator(
    path: tuple[str, ...], where: str, name: str, operand: Any, max_in: int
) -> Condition:
    op = _OPERATORS.get(name)
    if op is None:
        raise _invalid(where, f"unknown operator {name!r} (supported: {_SUPPORTED})")
    where = f"{where} {name}"
    if op in ("eq", "ne"):
        return Condition(path, op, _literal(operand, where, 0))
    if op == "in":
        return Condition(path, op, _parse_in(operand, where, max_in))
    if not isinstance(operand, bool | int | float | str):
        raise _invalid(
            where, f"needs a number, a string or a boolean, got {_kind(operand)}"
        )
    return Condition(path, op, _literal(operand, where, 0))


def _parse_in(operand: Any, where: str, max_in: int) -> tuple[Any, ...]:
    if isinstance(operand, Mapping | list | tuple) and not operand:
        raise _invalid(where, "is empty; it needs a list of 1 or more values")
    if not isinstance(operand, list | tuple):
        raise _invalid(where, f"needs a list of values, got {_kind(operand)}")
    if len(operand) > max_in:
        raise _invalid(where, f"has {len(operand)} values, at most {max_in}")
    return tuple(_literal(item, f"{where}[{n}]", 0) for n, item in enumerate(operand))


def _literal(value: Any, where: str, depth: int) -> Any:
    """A checked copy of a JSON-like value compared by equality."""
    if depth > _MAX_VALUE_DEPTH:
        raise _invalid(where, f"value nests deeper than {_MAX_VALUE_DEPTH} levels")
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _invalid(where, "numbers must be finite")
        return value
    if isinstance(value, str):
        if "\x00" in value:
            raise _invalid(where, "strings cannot contain a NUL character")
        return value
    if isinstance(value, list | tuple):
        return [_literal(item, where, depth + 1) for item in value]
    if isinstance(value, Mapping):
        return {
            _literal_key(k, where): _literal(v, where, depth + 1)
            for k, v in value.items()
        }
    raise _invalid(where, f"unsupported value of type {_kind(value)}")


def _literal_key(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise _invalid(where, f"object keys must be strings, got {_kind(key)}")
    if key.startswith("$"):
        raise _invalid(
            where, f"{key!r}: operators are allowed only directly under a field"
        )
    if "\x00" in key:
        raise _invalid(where, "strings cannot contain a NUL character")
    return key
