"""The rules a JSON value from outside keeps before it is stored."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from picloud.domain.redaction import REDACTED, credential_names, stored_request
from picloud.domain.values import (
    INT_MAX,
    INT_MIN,
    check_json,
    check_text,
    check_value,
    without_nul,
)
from picloud.errors import InvalidInput
from picloud.events.app import RequestRecord


def nested(depth: int, inner: Any = 1) -> Any:
    """``depth`` lists around ``inner``."""
    value = inner
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "text",
        {"a": [1, 2.5, True, None, {"b": "c"}]},
        INT_MAX,
        INT_MIN,
        nested(4),
        {"x": nested(3)},
    ],
)
def test_values_within_every_rule_pass(value: Any) -> None:
    check_value(value, max_depth=4)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (nested(5), r"^\$\[0\]\[0\]\[0\]\[0\]: nested deeper than 4 levels"),
        ({"a": {"b": {"c": {"d": {}}}}}, r"^\$\.a\.b\.c\.d: nested deeper"),
        ({"a": ["ok", "x\0y"]}, r"^the string at \$\.a\[1\] contains a NUL"),
        ({"ok": {"k\0": 1}}, r"^a key at \$\.ok contains a NUL"),
        ([INT_MAX + 1], r"^\$\[0\]: the integer is outside the 64-bit range"),
        ({"n": INT_MIN - 1}, r"^\$\.n: the integer is outside"),
        ({"n": 2**64}, "outside the 64-bit range"),
        ([float("inf")], r"^\$\[0\]: numbers must be finite"),
        ([float("nan")], "finite"),
    ],
)
def test_a_value_breaking_a_rule_is_refused_naming_the_place(
    value: Any, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_value(value, max_depth=4)


def test_a_value_read_one_level_down_may_nest_one_level_less() -> None:
    check_value(nested(3), max_depth=4, level=2)
    with pytest.raises(InvalidInput, match="nested deeper than 3 levels"):
        check_value(nested(4), max_depth=4, level=2)


def test_nesting_past_pythons_recursion_limit_is_refused_not_a_recursion_error() -> (
    None
):
    value = msgspec.json.decode(b"[" * 900 + b"]" * 900)
    with pytest.raises(InvalidInput, match="nested deeper than 32 levels"):
        check_value(value, max_depth=32)


def test_a_very_long_place_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_value({"k" * 30: nested(200)}, max_depth=100)
    assert refused.value.message.startswith("…")
    assert len(refused.value.message.split(":")[0]) <= 120


def test_text_with_a_nul_is_refused_naming_what_it_is() -> None:
    assert check_text("fine", "the path") == "fine"
    with pytest.raises(InvalidInput, match=r"^the path contains a NUL character"):
        check_text("a\0b", "the path")


def test_text_with_a_nul_is_refused_by_name() -> None:
    assert check_text("fine", "the key") == "fine"
    with pytest.raises(InvalidInput, match="the key contains a NUL character"):
        check_text("a\x00b", "the key")


@pytest.mark.parametrize(
    "value",
    ["a\x00", {"k\x00": 1}, ["x", {"deep": ["\x00"]}]],
)
def test_json_holding_a_nul_anywhere_is_refused(value: object) -> None:
    with pytest.raises(InvalidInput, match="NUL"):
        check_json(msgspec.json.encode(value), "the value")


@pytest.mark.parametrize("value", ["\\u0000", "\\\\u0000", "u0000", "\\x00"])
def test_a_backslash_and_u0000_as_text_is_not_a_nul(value: str) -> None:
    data = msgspec.json.encode(value)
    assert check_json(data, "the value") == data


@given(st.text())
def test_check_json_agrees_with_the_decoded_value(text: str) -> None:
    data = msgspec.json.encode({"t": text})
    try:
        check_json(data, "v")
    except InvalidInput:
        assert "\x00" in text
    else:
        assert "\x00" not in text


def test_what_is_recorded_loses_its_nul_characters() -> None:
    assert without_nul("a\x00b") == "a\ufffdb"
    assert without_nul("plain") == "plain"


def test_a_stored_request_keeps_no_credential_and_no_nul() -> None:
    request = RequestRecord(
        method="GET",
        path="/p\x00",
        params={"id": "1\x00"},
        query={"q\x00": "v"},
        headers={
            "authorization": "Bearer t",
            "cookie": "a=b",
            "x-secret": "s",
            "x-kept": "k\x00",
        },
    )
    stored = stored_request(request, credential_names("X-Secret, "))
    assert stored.headers == {
        "authorization": REDACTED,
        "cookie": REDACTED,
        "x-secret": REDACTED,
        "x-kept": "k\ufffd",
    }
    assert stored.path == "/p\ufffd"
    assert stored.params == {"id": "1\ufffd"}
    assert stored.query == {"q\ufffd": "v"}


def test_a_clean_request_is_stored_as_it_is_and_a_credential_costs_its_headers() -> (
    None
):
    names = credential_names("")
    clean = RequestRecord(
        method="GET", path="/p", params={"a": "1"}, headers={"accept": "*/*"}
    )
    assert stored_request(clean, names) is clean
    with_key = RequestRecord(
        method="GET",
        path="/p",
        headers={"accept": "*/*", "cookie": "s=1", "authorization": "Basic x"},
    )
    stored = stored_request(with_key, names)
    assert stored.headers == {
        "accept": "*/*",
        "cookie": REDACTED,
        "authorization": REDACTED,
    }
    assert stored.path == "/p"
    assert with_key.headers["cookie"] == "s=1"  # the script's own copy is untouched
    # a NUL in a header name alone still takes the full cleaning
    odd = RequestRecord(method="GET", path="/p", headers={"x-\x00": "v"})
    assert stored_request(odd, names).headers == {"x-\ufffd": "v"}
