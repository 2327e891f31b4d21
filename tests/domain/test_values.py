"""What Postgres can store is checked where a value enters."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from picloud.domain.redaction import REDACTED, credential_names, stored_request
from picloud.domain.values import check_json, check_text, without_nul
from picloud.errors import InvalidInput
from picloud.events.app import RequestRecord


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
