"""The argument checks every SDK namespace shares: pages, options, limits."""

from __future__ import annotations

from typing import Any

import pytest

from picloud.domain.paging import decode_cursor
from picloud.domain.sdk_args import limit_of, options, page_of
from picloud.errors import SdkCallError


def test_the_last_page_has_no_cursor_key_so_lua_sees_nil() -> None:
    assert page_of([1, 2], None) == {"items": [1, 2]}
    assert page_of([], None) == {"items": []}


def test_a_page_with_more_after_it_carries_the_cursor_of_its_last_key() -> None:
    page = page_of(["a", "b"], "b")
    assert page["items"] == ["a", "b"]
    assert decode_cursor(page["cursor"]) == "b"


@pytest.mark.parametrize(
    "args", [[], ["coll"], ["coll", None], ["coll", None, {}]], ids=repr
)
def test_missing_or_nil_options_are_empty(args: list[Any]) -> None:
    assert options(args, 1, {"limit"}) == {}


def test_known_options_are_returned_as_given() -> None:
    opts = {"limit": 5, "cursor": "YQ=="}
    assert options(["coll", opts], 1, {"limit", "cursor", "order"}) == opts


@pytest.mark.parametrize("value", ["limit=5", 5, [1], True])
def test_options_must_be_a_table(value: object) -> None:
    with pytest.raises(SdkCallError, match="options must be a table"):
        options(["coll", value], 1, {"limit"})


def test_an_unknown_option_is_named_with_the_known_ones() -> None:
    with pytest.raises(SdkCallError) as caught:
        options(["coll", {"zeta": 1, "alpha": 2, "limit": 3}], 1, {"limit", "cursor"})
    assert caught.value.message == ("unknown option 'alpha'; options are cursor, limit")


@pytest.mark.parametrize(("value", "limit"), [(None, 100), (1, 1), (1000, 1000)])
def test_a_limit_defaults_to_100_and_may_be_1_to_1000(
    value: object, limit: int
) -> None:
    assert limit_of(value) == limit


@pytest.mark.parametrize("value", [0, -1, 1001, 10**20, True, False, 5.0, "5", [5]])
def test_any_other_limit_is_refused(value: object) -> None:
    with pytest.raises(SdkCallError, match="from 1 to 1000"):
        limit_of(value)
