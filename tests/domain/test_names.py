"""The rules for names, slugs and route paths."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from picloud.domain.names import (
    COLLECTION,
    METHODS,
    SCRIPT_NAME,
    USERNAME,
    NameRule,
    check_collection,
    check_script_name,
    check_slug,
    check_username,
    normalise_path,
    path_shape,
)
from picloud.errors import InvalidInput

RULES = [COLLECTION, SCRIPT_NAME, USERNAME]

# Per rule: values it takes, and values it refuses whatever their case.
ACCEPTED = {
    "collection name": ["orders", "_x", "9lives", "a.b-c_d", "A" * 64],
    "script name": ["hello", "_x", "Hello_World9", "a" * 64],
    "username": ["ann", "0", "a.b-c_d", "x" * 63],
}
REFUSED = {
    "collection name": [".x", "-x", "a b", "a/b", "a" * 65, "é", "a:b"],
    "script name": ["9x", "a.b", "a-b", "a b", "a" * 65, "ñ", "a$"],
    "username": ["_x", ".x", "-x", "a b", "a" * 64, "ü", "a@b"],
}
# Refused by every rule: empty, control characters, look-alikes of ASCII.
EVERYWHERE_REFUSED = [
    "",
    "\x00",
    "a\x00",
    "\x00a",
    "a\n",
    "\na",
    "a\t",
    "\uff41",  # fullwidth a
    "\u0430",  # Cyrillic a
    "a\u200b",  # zero-width space
    "\u0661",  # Arabic-Indic digit one
]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.what)
def test_each_rule_takes_its_names_and_refuses_the_rest(rule: NameRule) -> None:
    for value in ACCEPTED[rule.what]:
        assert rule.check(value) == value
    for value in REFUSED[rule.what] + EVERYWHERE_REFUSED:
        with pytest.raises(InvalidInput, match=rule.what):
            rule.check(value)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.what)
def test_the_length_limit_is_exact(rule: NameRule) -> None:
    first = "a"
    assert rule.check(first * rule.max_length)
    with pytest.raises(InvalidInput):
        rule.check(first * (rule.max_length + 1))


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.what)
@pytest.mark.parametrize("value", [None, 7, b"abc", ["abc"]])
def test_a_value_that_is_not_a_string_is_refused(rule: NameRule, value: object) -> None:
    with pytest.raises(InvalidInput):
        rule.check(value)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.what)
@given(data=st.data())
def test_whatever_the_pattern_describes_the_rule_accepts(
    rule: NameRule, data: st.DataObject
) -> None:
    value = data.draw(st.from_regex(re.compile(rule.pattern), fullmatch=True))
    assert 1 <= len(value) <= rule.max_length
    assert value.isascii()
    assert rule.check(value) == value


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.what)
@given(value=st.text(min_size=1, max_size=70))
def test_a_name_is_accepted_only_in_ascii_and_within_the_limit(
    rule: NameRule, value: str
) -> None:
    try:
        rule.check(value)
    except InvalidInput:
        return
    assert value.isascii()
    assert value.isprintable()
    assert 1 <= len(value) <= rule.max_length


def test_the_error_quotes_what_the_caller_wrote_cut_to_80_characters() -> None:
    with pytest.raises(InvalidInput, match=r"'Bad Name'") as caught:
        USERNAME.check("bad name", given="Bad Name")
    assert "1-63" in caught.value.message
    with pytest.raises(InvalidInput) as caught:
        check_collection("!" * 500)
    assert "!" * 80 in caught.value.message
    assert "!" * 81 not in caught.value.message


def test_the_pattern_is_the_rule_for_the_lua_side_and_json_schema() -> None:
    assert SCRIPT_NAME.pattern == "^[a-zA-Z_][a-zA-Z0-9_]{0,63}$"
    assert COLLECTION.pattern == "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"


def test_the_named_checks_use_their_rules() -> None:
    assert check_collection("orders.v2") == "orders.v2"
    assert check_script_name("main") == "main"
    with pytest.raises(InvalidInput, match="collection name"):
        check_collection("")
    with pytest.raises(InvalidInput, match="script name"):
        check_script_name("orders.v2")


# -- usernames -----------------------------------------------------------------------


def test_usernames_are_lower_cased_and_the_error_shows_what_was_typed() -> None:
    assert check_username("Ann.Lee") == "ann.lee"
    with pytest.raises(InvalidInput, match="'Ann Lee'"):
        check_username("Ann Lee")


@given(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z"))
def test_a_normalised_username_is_a_fixed_point(name: str) -> None:
    once = check_username(name)
    assert once == name.lower()
    assert check_username(once) == once


# -- slugs ---------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["a", "shop", "my-shop-2", "a--b", "0", "a" * 63])
def test_slugs_that_are_dns_labels_are_taken(slug: str) -> None:
    check_slug(slug)


@pytest.mark.parametrize(
    "slug",
    [
        "",
        "-shop",
        "shop-",
        "Shop",
        "my_shop",
        "a.b",
        "a" * 64,
        "shöp",
        "sh op",
        "a\x00",
    ],
)
def test_slugs_that_are_not_dns_labels_are_refused(slug: str) -> None:
    with pytest.raises(InvalidInput, match="invalid slug"):
        check_slug(slug)


@pytest.mark.parametrize(
    "slug",
    [
        "api",
        "admin",
        "www",
        "static",
        "dashboard",
        "healthz",
        "11111111-1111-4111-8111-111111111111",
        "00000000-0000-0000-0000-000000000000",
    ],
)
def test_reserved_slugs_and_uuids_are_refused(slug: str) -> None:
    with pytest.raises(InvalidInput, match="reserved"):
        check_slug(slug)


@given(st.uuids())
def test_no_uuid_can_be_a_slug(value: object) -> None:
    with pytest.raises(InvalidInput):
        check_slug(str(value))


def test_a_slug_near_a_reserved_one_is_taken() -> None:
    for slug in ("api2", "my-admin", "www-shop", "11111111-1111-4111-8111-11111111111"):
        check_slug(slug)


# -- route paths ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        ("/", "/"),
        ("//", "/"),
        ("/orders/", "/orders"),
        ("/orders///", "/orders"),
        ("/orders/{id}", "/orders/{id}"),
        ("/a/{x}/b/{y_2}", "/a/{x}/b/{y_2}"),
        ("/a.b~c!$&'()*+,;=:@-_", "/a.b~c!$&'()*+,;=:@-_"),
        ("/files/{path*}", "/files/{path*}"),
        ("/{all*}/", "/{all*}"),
    ],
)
def test_paths_are_kept_but_for_a_trailing_slash(path: str, normal: str) -> None:
    assert normalise_path(path) == normal


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "must start with /"),
        ("orders", "must start with /"),
        (" /orders", "must start with /"),
        ("/a//b", "segment ''"),
        ("/a b", "not allowed"),
        ("/a?b=1", "not allowed"),
        ("/a#b", "not allowed"),
        ("/a%20b", "not allowed"),
        ("/a\x00", "not allowed"),
        ("/caf\u00e9", "not allowed"),
        ("/a/{1x}", "not allowed"),
        ("/a/{}", "not allowed"),
        ("/a/{x-y}", "not allowed"),
        ("/a/x{id}", "not allowed"),
        ("/a/{" + "x" * 65 + "}", "not allowed"),
        ("/{id}/b/{id}", "repeats a parameter"),
        ("/{rest*}/b", "must be the last segment"),
        ("/a/{id}/{id*}", "repeats a parameter"),
        ("/a/{*}", "not allowed"),
        ("/a/{x**}", "not allowed"),
    ],
)
def test_bad_paths_are_refused_with_the_reason(path: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(why)):
        normalise_path(path)


def test_a_path_may_be_512_characters_long() -> None:
    assert normalise_path("/" + "a" * 511) == "/" + "a" * 511
    with pytest.raises(InvalidInput, match="512"):
        normalise_path("/" + "a" * 512)


def test_the_shape_of_a_path_forgets_parameter_names() -> None:
    assert path_shape("/users/{id}/posts/{post}") == "/users/{}/posts/{}"
    assert path_shape("/users/{id}") == path_shape("/users/{name}")
    assert path_shape("/users/me") != path_shape("/users/{id}")
    assert path_shape("/") == "/"
    assert path_shape("/files/{path*}") == path_shape("/files/{other*}")
    assert path_shape("/files/{path*}") != path_shape("/files/{path}")


SEGMENT = st.one_of(
    st.text(st.sampled_from("abcXYZ019._~!$&'()*+,;=:@-"), min_size=1, max_size=8),
    st.from_regex(r"\A\{[A-Za-z_][A-Za-z0-9_]{0,5}\}\Z"),
)


@given(segments=st.lists(SEGMENT, max_size=6), slash=st.booleans())
def test_normalising_and_shaping_a_path_are_idempotent(
    segments: list[str], slash: bool
) -> None:
    params = [s for s in segments if s.startswith("{")]
    path = "/" + "/".join(segments) + ("/" if slash else "")
    if len(params) != len(set(params)):
        with pytest.raises(InvalidInput, match="repeats"):
            normalise_path(path)
        return
    normal = normalise_path(path)
    assert normalise_path(normal) == normal
    assert normal == "/" or not normal.endswith("/")
    shape = path_shape(normal)
    assert path_shape(shape) == shape
    assert shape.count("{}") == len(params)


def test_the_methods_are_the_http_methods_we_route() -> None:
    assert {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"} == METHODS


@pytest.mark.parametrize("slug", ["shop\n", "api\n", "a-b\n"])
def test_a_slug_with_a_trailing_newline_is_refused(slug: str) -> None:
    with pytest.raises(InvalidInput):
        check_slug(slug)


@pytest.mark.parametrize("path", ["/orders\n", "/a\n/b", "/users/{id}\n"])
def test_a_route_path_with_a_newline_in_it_is_refused(path: str) -> None:
    with pytest.raises(InvalidInput):
        normalise_path(path)
