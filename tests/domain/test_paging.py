"""Opaque keyset cursors: what a list returns, the next call takes back."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from picloud.domain.paging import decode_cursor, encode_cursor
from picloud.errors import InvalidInput


@given(st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0")))
def test_any_key_round_trips_through_a_url_safe_cursor(last: str) -> None:
    cursor = encode_cursor(last)
    assert cursor is not None
    assert re.fullmatch(r"[A-Za-z0-9_-]*=*", cursor)
    assert decode_cursor(cursor) == last


def test_keys_that_would_need_plus_and_slash_get_dash_and_underscore() -> None:
    last = "\u03cf" * 3
    assert base64.b64encode(last.encode()) == b"z4/Pj8+P"
    assert encode_cursor(last) == "z4_Pj8-P"
    assert decode_cursor("z4_Pj8-P") == last


def test_there_is_no_cursor_after_the_last_page() -> None:
    assert encode_cursor(None) is None


@pytest.mark.parametrize("cursor", [None, ""])
def test_no_cursor_means_the_first_page(cursor: object) -> None:
    assert decode_cursor(cursor) == ""


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!!",
        "\ud800",  # a lone surrogate cannot even be encoded
        "abc",  # bad padding
        "YW=j",  # padding inside
        "=YWJ",
        "YW Jj",
        "Y\x00Wj",
        "éé==",
        "_w==",  # a byte that is not UTF-8
        "YWJj\n",
        "AA==",  # a NUL: no key or id holds one, and Postgres text refuses it
        "YQBi",  # "a\0b"
    ],
)
def test_a_malformed_cursor_is_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInput, match="malformed cursor"):
        decode_cursor(cursor)


@pytest.mark.parametrize("cursor", [7, 0, b"YWJj", ["YWJj"], {"c": 1}, 1.5, True])
def test_a_cursor_that_is_not_a_string_is_invalid_input(cursor: object) -> None:
    with pytest.raises(InvalidInput, match="must be the string"):
        decode_cursor(cursor)


CURSOR_ISH = st.text(
    st.one_of(
        st.sampled_from("AQgwYZaz09-_+/="),  # the base64 alphabets and padding
        st.characters(),
        st.characters(categories=["Cs"]),  # lone surrogates
    ),
    min_size=1,
)


@given(CURSOR_ISH)
def test_decoding_any_string_either_succeeds_or_raises_invalid_input(
    cursor: str,
) -> None:
    try:
        decoded = decode_cursor(cursor)
    except InvalidInput:
        return
    assert isinstance(decoded, str)
