"""The query DSL without a database: parsing, every malformed filter and its
message, the reference semantics (matches, sort_key) and the index rows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from picloud.errors import InvalidInput
from picloud.store.docs_query import (
    Condition,
    DocQuery,
    DocValue,
    Sort,
    doc_index_rows,
    matches,
    parse_query,
    sort_key,
)


def parse(raw: Any, *, max_in: int = 5, max_limit: int = 50) -> DocQuery:
    return parse_query(raw, max_in=max_in, max_limit=max_limit)


def ids(raw: Any, docs: dict[str, Any]) -> list[str]:
    """The reference find: filter, order, limit."""
    query = parse(raw)
    key = sort_key(query)
    found = [i for i, d in docs.items() if matches(query, d)]
    return sorted(found, key=lambda i: key(i, docs[i]))[: query.limit]


# -- parsing ---------------------------------------------------------------------


def test_empty_filters_match_everything_with_the_maximum_limit() -> None:
    empties: list[Any] = [None, {}, []]
    for raw in empties:
        assert parse(raw) == DocQuery(limit=50)


def test_implicit_equality_operators_sort_and_limit() -> None:
    query = parse(
        {
            "tier": "gold",
            "user.age": {"$gt": 30, "$lte": 40.5},
            "tags": {"$in": ["a", None]},
            "$sort": "-user.age",
            "$limit": 7,
        }
    )
    assert query == DocQuery(
        conditions=(
            Condition(("tier",), "eq", "gold"),
            Condition(("user", "age"), "gt", 30),
            Condition(("user", "age"), "lte", 40.5),
            Condition(("tags",), "in", ("a", None)),
        ),
        sort=Sort(("user", "age"), descending=True),
        limit=7,
    )


def test_plain_objects_and_arrays_are_literal_values() -> None:
    query = parse({"o": {"a": 1, "b": [1, {"c": None}]}, "t": [1, 2], "e": {}})
    assert [c.op for c in query.conditions] == ["eq", "eq", "eq"]
    assert query.conditions[0].operand == {"a": 1, "b": [1, {"c": None}]}


def test_an_integral_float_limit_is_an_integer() -> None:
    assert parse({"$limit": 3.0}).limit == 3


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("tier", "invalid filter at the filter: must be a table of fields, got string"),
        ([1, 2], "must be a table of fields, got array"),
        ({1: "x"}, "keys must be strings, got number"),
        ({"$or": [{"a": 1}]}, "at '$or': unknown operator (supported: $eq, $ne,"),
        ({"$where": "1"}, "at '$where': unknown operator"),
        ({"a": {"$regex": "x"}}, "at 'a': unknown operator '$regex'"),
        ({"a": {"$exists": True}}, "at 'a': unknown operator '$exists'"),
        ({"a": {"$nin": [1]}}, "at 'a': unknown operator '$nin'"),
        (
            {"a": {"$gt": 1, "b": 2}},
            "at 'a': an object mixes '$' operators and plain keys",
        ),
        ({"a.b.c.d.e.f": 1}, "at 'a.b.c.d.e.f': path has 6 keys, at most 5"),
        ({"a..b": 1}, "at 'a..b': path has an empty key"),
        ({"": 1}, "at '': path has an empty key"),
        ({"a.": 1}, "at 'a.': path has an empty key"),
        ({"a.$b": 1}, "at 'a.$b': path key '$b' starts with '$'"),
        ({"k" * 257: 1}, "path is longer than 256 bytes"),
        (
            {"a": {"$gt": None}},
            "at 'a' $gt: needs a number, a string or a boolean, got null",
        ),
        (
            {"a": {"$lt": [1]}},
            "at 'a' $lt: needs a number, a string or a boolean, got array",
        ),
        (
            {"a": {"$gte": {"x": 1}}},
            "at 'a' $gte: needs a number, a string or a boolean, got object",
        ),
        ({"a": {"$lte": float("nan")}}, "at 'a' $lte: numbers must be finite"),
        ({"a": {"$eq": float("inf")}}, "at 'a' $eq: numbers must be finite"),
        ({"a": float("-inf")}, "at 'a': numbers must be finite"),
        (
            {"a": {"$in": []}},
            "at 'a' $in: is empty; it needs a list of 1 or more values",
        ),
        ({"a": {"$in": {}}}, "at 'a' $in: is empty"),
        ({"a": {"$in": "x"}}, "at 'a' $in: needs a list of values, got string"),
        ({"a": {"$in": {"x": 1}}}, "at 'a' $in: needs a list of values, got object"),
        ({"a": {"$in": [1, 2, 3, 4, 5, 6]}}, "at 'a' $in: has 6 values, at most 5"),
        (
            {"a": {"$in": [1, {"$gt": 1}]}},
            "at 'a' $in[1]: '$gt': operators are allowed only directly under a field",
        ),
        (
            {"a": {"b": {"$gt": 1}}},
            "at 'a': '$gt': operators are allowed only directly under a field",
        ),
        ({"a": {"$eq": {"$ne": 1}}}, "at 'a' $eq: '$ne': operators are allowed only"),
        ({"a": [{"$in": [1]}]}, "at 'a': '$in': operators are allowed only"),
        ({"a": {"b": {1: 2}}}, "at 'a': object keys must be strings, got number"),
        ({"a": {1, 2}}, "at 'a': unsupported value of type set"),
        ({"a": "x\x00y"}, "at 'a': strings cannot contain a NUL character"),
        ({"a": {"$gt": "\x00"}}, "at 'a' $gt: strings cannot contain a NUL character"),
        (
            {"$sort": 1},
            "at '$sort': must be a field name (or '-field' for descending), got number",
        ),
        ({"$sort": {"age": -1}}, "at '$sort': must be a field name"),
        ({"$sort": ["a", "b"]}, "at '$sort': must be a field name"),
        ({"$sort": ""}, "at '': path has an empty key"),
        ({"$sort": "-"}, "at '': path has an empty key"),
        ({"$sort": "a.b.c.d.e.f"}, "path has 6 keys, at most 5"),
        ({"$sort": "-a.$x"}, "path key '$x' starts with '$'"),
        ({"$limit": 0}, "at '$limit': must be between 1 and 50, got 0"),
        ({"$limit": 51}, "at '$limit': must be between 1 and 50, got 51"),
        ({"$limit": -3}, "must be between 1 and 50, got -3"),
        ({"$limit": 2.5}, "at '$limit': must be an integer, got number"),
        ({"$limit": "10"}, "at '$limit': must be an integer, got string"),
        ({"$limit": True}, "at '$limit': must be an integer, got boolean"),
    ],
)
def test_every_malformed_filter_is_refused_with_what_and_where(
    raw: Any, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(raw)
    assert message in caught.value.message
    assert caught.value.code == "invalid_input"


def test_nesting_deeper_than_sixty_four_levels_is_refused() -> None:
    value: Any = 1
    for _ in range(70):
        value = [value]
    with pytest.raises(InvalidInput, match="nests deeper than 64 levels"):
        parse({"a": value})


# -- the reference semantics -----------------------------------------------------

DOCS: dict[str, Any] = {
    "d01": {"age": 10},
    "d02": {"age": 9},
    "d03": {"age": "10"},
    "d04": {"age": "9"},
    "d05": {"age": 10.0},
    "d06": {"age": True},
    "d07": {"age": 1},
    "d08": {"age": None},
    "d09": {},
    "d10": {"age": [1, "10", 30]},
    "d11": {"age": {"v": 10}},
    "d12": {"age": [[10]]},
    "d13": {"age": False},
    "d14": {"age": [None, 2]},
    "d15": {"age": []},
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # type brackets: 10 > 9 numerically, "10" is no number, true is no 1
        ({"age": {"$gt": 9}}, ["d01", "d05", "d10"]),
        ({"age": {"$gt": "9"}}, []),
        ({"age": {"$lt": "9"}}, ["d03", "d10"]),
        ({"age": {"$gte": "10"}}, ["d03", "d04", "d10"]),
        ({"age": {"$lte": 1}}, ["d07", "d10"]),
        ({"age": 1}, ["d07", "d10"]),
        ({"age": True}, ["d06"]),
        ({"age": {"$gt": False}}, ["d06"]),
        ({"age": {"$gte": False}}, ["d06", "d13"]),
        ({"age": {"$lt": False}}, []),
        ({"age": 10}, ["d01", "d05"]),
        ({"age": 10.0}, ["d01", "d05"]),
        ({"age": "10"}, ["d03", "d10"]),
        # arrays: any element, or the whole array; one level only
        ({"age": 30}, ["d10"]),
        ({"age": [10]}, ["d12"]),
        ({"age": [1, "10", 30]}, ["d10"]),
        ({"age": ["10", 1, 30]}, []),
        ({"age": []}, ["d15"]),
        ({"age": {"$gt": 1, "$lt": 30}}, ["d01", "d02", "d05", "d10", "d14"]),
        # objects: exact equality, not containment
        ({"age": {"v": 10}}, ["d11"]),
        ({"age": {"v": 10.0}}, ["d11"]),
        ({"age": {}}, []),
        ({"age.v": 10}, ["d11"]),
        # null and missing
        ({"age": None}, ["d08", "d09", "d14"]),
        ({"age": {"$eq": None}}, ["d08", "d09", "d14"]),
        ({"age": {"$ne": None}}, [i for i in DOCS if i not in ("d08", "d09", "d14")]),
        ({"age": {"$ne": 10}}, [i for i in DOCS if i not in ("d01", "d05")]),
        ({"age": {"$ne": 1}}, [i for i in DOCS if i not in ("d07", "d10")]),
        ({"age": {"$in": [None, 9]}}, ["d02", "d08", "d09", "d14"]),
        ({"age": {"$in": ["9", True, {"v": 10}]}}, ["d04", "d06", "d11"]),
        ({"nothing": None}, list(DOCS)),
        ({"age.v.w": None}, list(DOCS)),
        # a path through a scalar or an array is missing
        ({"age.0": 1}, []),
        ({"age.v": {"$gt": 0}}, ["d11"]),
    ],
)
def test_reference_semantics(raw: dict[str, Any], expected: list[str]) -> None:
    assert ids(raw, DOCS) == expected


def test_sort_orders_types_then_values_then_ids() -> None:
    docs: dict[str, Any] = {
        "k": {"v": True},
        "j": {"v": False},
        "i": {"v": [0]},
        "h": {"v": {"z": 1}},
        "g": {"v": "b"},
        "f": {"v": "B"},
        "e": {"v": "10"},
        "d": {"v": 10},
        "c": {"v": 9.5},
        "b": {"v": None},
        "a": {},
        "l": {"v": 10.0},
        "m": {"v": []},
        "n": {"v": {}},
    }
    ascending = ["a", "b", "c", "d", "l", "e", "f", "g", "h", "n", "i", "m", "j", "k"]
    assert ids({"$sort": "v"}, docs) == ascending
    # Descending reverses values, but equal keys keep id order.
    assert ids({"$sort": "-v"}, docs) == [
        "k", "j", "i", "m", "h", "n", "g", "f", "e", "d", "l", "c", "a", "b",
    ]  # fmt: skip
    assert ids({"$sort": "v", "$limit": 3}, docs) == ["a", "b", "c"]
    assert ids({}, docs) == sorted(docs)


def test_numbers_compare_as_postgres_numeric_does() -> None:
    # 1e23 is not exactly 10**23 in binary, but JSON and numeric hold it exactly.
    docs: dict[str, Any] = {"a": {"n": 1e23}, "b": {"n": 10**23}, "c": {"n": -0.0}}
    assert ids({"n": 10**23}, docs) == ["a", "b"]
    assert ids({"n": {"$lt": 10**23}}, docs) == ["c"]
    assert ids({"n": 0}, docs) == ["c"]


def test_matches_accepts_json_bytes() -> None:
    assert matches(parse({"a.b": {"$gte": 2}}), b'{"a": {"b": 2.0}}')
    assert not matches(parse({"a.b": {"$gte": 2}}), b'{"a": [{"b": 2}]}')


# -- index rows ------------------------------------------------------------------


def test_index_rows_hold_every_addressable_scalar_once() -> None:
    rows = doc_index_rows(
        {
            "n": 1.5,
            "s": "x",
            "b": True,
            "z": None,
            "t": [1, 1.0, "a", "a", [2], {"k": 3}, None, False],
            "o": {"a": {"b": {"c": {"d": 4, "e": {"f": 5}}}}},
            "a.b": 6,
            "$x": 7,
            "": 8,
            "long": "é" * 300,
            "big": 10**23,
        }
    )
    assert sorted(rows, key=repr) == sorted(
        [
            DocValue("n", Decimal("1.5"), None),
            DocValue("s", None, "x"),
            DocValue("t.$", Decimal(1), None),
            DocValue("t.$", None, "a"),
            DocValue("o.a.b.c.d", Decimal(4), None),
            DocValue("long", None, None),
            DocValue("big", Decimal(10**23), None),
        ],
        key=repr,
    )
    assert doc_index_rows(b'{"n": 1e23}') == [DocValue("n", Decimal("1E+23"), None)]
    assert doc_index_rows([1, 2]) == []
