"""Hostile input to the admin API: every bad input is a 4xx JSON error naming
the problem, never a 5xx, a hang or plain text, and nothing is written.

Found by schemathesis (NUL in names, ids and query values reached Postgres)
and by hand (deep JSON, big integers, invalid UTF-8, unbounded page sizes).
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import msgspec
import pytest

from picloud.server import Server
from tests.http.helpers import (
    Api,
    Identity,
    login,
    make_app,
    make_route,
    raw_exchange,
)

pytestmark = [pytest.mark.ray, pytest.mark.server, pytest.mark.shared_server]

APPS = "/api/v1/admin/apps"
DEPTH = 32  # Settings.script_max_value_depth's default: what scripts can read


def assert_refused(answer: tuple[int, Any], status: int, *words: str) -> None:
    """``answer`` is the JSON error ``status`` whose message has ``words``."""
    code, body = answer
    assert code == status, body
    assert isinstance(body, dict), body
    assert set(body["error"]) >= {"code", "message"}, body
    for word in words:
        assert word in body["error"]["message"], body


async def test_a_nul_in_any_path_is_a_400_before_anything_looks_it_up(
    api: Api,
) -> None:
    await make_app(api, "nulpath")
    some_id = str(uuid.uuid4())
    for method, path in [
        ("GET", f"{APPS}/%00"),
        ("GET", f"{APPS}/nul%00path/scripts"),
        ("GET", "/api/v1/admin/scripts/%00"),
        ("PUT", f"/api/v1/admin/scripts/{some_id}%00"),
        ("DELETE", "/api/v1/admin/routes/%00"),
        ("DELETE", "/api/v1/admin/triggers/%00"),
        ("GET", f"{APPS}/nulpath/kv/c/a%00b"),
        ("PUT", f"{APPS}/nulpath/kv/c/a%00b"),
        ("DELETE", f"{APPS}/nulpath/kv/c/%00"),
        ("GET", f"{APPS}/nulpath/docs/c/%00"),
        ("GET", f"{APPS}/nulpath/dead-letters/%00"),
        ("GET", "/api/v1/admin/users/%00"),
        ("DELETE", "/api/v1/admin/keys/%00"),
        ("DELETE", "/api/v1/auth/keys/%00"),
    ]:
        body = 1 if method == "PUT" else None
        answer = await api.call(method, path, body)
        assert_refused(answer, 400, "the path contains a NUL character")
    assert (await api.call("GET", f"{APPS}/nulpath/kv/c"))[1]["items"] == []


async def test_a_nul_in_a_query_value_name_or_cursor_is_a_400(api: Api) -> None:
    await make_app(api, "nulquery")
    kv, docs = f"{APPS}/nulquery/kv/c", f"{APPS}/nulquery/docs/c"
    nul_cursor = "AA=="  # base64 of a NUL: it decodes, but names no key
    for path, words in [
        (f"{kv}?prefix=%00", ["query parameter 'prefix'", "NUL"]),
        (f"{kv}?prefix=a&x%00=1", ["query parameter name", "NUL"]),
        (f"{kv}?cursor={nul_cursor}", ["malformed cursor"]),
        (f"{docs}?cursor={nul_cursor}", ["malformed cursor"]),
        (f"{APPS}/nulquery/executions?status=%00", ["NUL"]),
        (f"{APPS}/nulquery/dead-letters?cursor=%00", ["NUL"]),
        (f"/api/v1/admin/scripts/{uuid.uuid4()}?force=%00", ["NUL"]),
    ]:
        assert_refused(await api.call("GET", path), 400, *words)


async def test_a_nul_in_a_json_body_is_refused_and_nothing_is_written(
    api: Api,
) -> None:
    await make_app(api, "nulbody")
    base = f"{APPS}/nulbody"
    status, doc = await api.call("POST", f"{base}/docs/c", {"n": 1})
    assert status == 201, doc
    for method, path, body, where in [
        ("POST", APPS, {"slug": "nul-app", "name": "a\0b"}, "$.name"),
        ("PATCH", base, {"name": "\0"}, "$.name"),
        ("POST", f"{base}/scripts", {"name": "s", "source": "return '\0'"}, "$.source"),
        ("PUT", f"{base}/kv/c/k", "a\0b", "$"),
        ("PUT", f"{base}/kv/c/k", {"ok": ["x", "\0"]}, "$.ok[1]"),
        ("PUT", f"{base}/kv/c/k", {"k\0": 1}, "a key at $"),
        ("POST", f"{base}/docs/c", {"a": {"b": "\0"}}, "$.a.b"),
        ("PUT", f"{base}/docs/c/{doc['id']}", {"a": "\0"}, "$.a"),
        ("POST", f"{base}/docs/c/find", {"filter": {"a": "\0"}}, "$.filter.a"),
        ("POST", "/api/v1/auth/login", {"username": "\0", "password": "x"}, "$"),
    ]:
        answer = await api.call(method, path, body)
        assert_refused(answer, 400, "NUL character", where)
    assert (await api.call("GET", f"{base}/kv/c/k"))[0] == 404
    status, kept = await api.call("GET", f"{base}/docs/c/{doc['id']}")
    assert (status, kept["data"]) == (200, {"n": 1})
    _, apps = await api.call("GET", APPS)
    assert [a["slug"] for a in apps["items"] if a["slug"] == "nul-app"] == []
    _, scripts = await api.call("GET", f"{base}/scripts")
    assert scripts["items"] == []


def nested(depth: int) -> bytes:
    """JSON of ``depth`` nested arrays."""
    return b"[" * depth + b"]" * depth


async def test_json_deeper_than_scripts_read_is_refused_and_at_the_limit_read(
    api: Api,
) -> None:
    await make_app(api, "deep")
    await make_route(
        api,
        "deep",
        'local v = kv.collection("c"):get("k") '
        'local d = docs.collection("c"):get(ctx.request.query.id) '
        'local page = kv.collection("c"):list() '
        'local found = docs.collection("c"):find({}) '
        'local docs_page = docs.collection("c"):list() '
        "return {kv = v ~= nil, doc = d ~= nil, listed = #page.items,"
        " found = #found, docs_listed = #docs_page.items}",
        path="/read",
    )
    base = f"{APPS}/deep"
    assert (await api.call("PUT", f"{base}/kv/c/k", raw=nested(DEPTH)))[0] == 200
    # A document's data is read inside its envelope: one level less.
    data = b'{"a":' + nested(DEPTH - 2) + b"}"
    status, doc = await api.call("POST", f"{base}/docs/c", raw=data)
    assert status == 201, doc
    answer = await api.call("GET", f"/apps/deep/read?id={doc['id']}")
    assert answer == (
        200,
        {"kv": True, "doc": True, "listed": 1, "found": 1, "docs_listed": 1},
    ), "a value the store took must be readable through every SDK call"

    refused = f"nested deeper than {DEPTH} levels"
    for raw in (nested(DEPTH + 1), nested(5000), b'{"a":' + nested(2000) + b"}"):
        assert_refused(await api.call("PUT", f"{base}/kv/c/k", raw=raw), 400, refused)
    too_deep_doc = b'{"a":' + nested(DEPTH - 1) + b"}"
    for method, path in [("POST", f"{base}/docs/c"), ("PUT", f"{base}/docs/c/x")]:
        answer = await api.call(method, path, raw=too_deep_doc)
        assert_refused(answer, 400, f"nested deeper than {DEPTH - 1} levels")
    deep_filter = b'{"filter":{"a":' + nested(5000) + b"}}"
    answer = await api.call("POST", f"{base}/docs/c/find", raw=deep_filter)
    assert_refused(answer, 400, refused)
    deep_app = b'{"slug":"x","name":"y","z":' + nested(3000) + b"}"
    assert_refused(await api.call("POST", APPS, raw=deep_app), 400, refused)
    _, kept = await api.call("GET", f"{base}/kv/c/k")
    assert msgspec.json.encode(kept) == nested(DEPTH)


async def test_numbers_scripts_cannot_hold_are_refused(api: Api) -> None:
    await make_app(api, "numbers")
    await make_route(
        api, "numbers", 'return {v = kv.collection("n"):get("k")}', path="/n"
    )
    base = f"{APPS}/numbers/kv/n/k"
    for value in (2**63 - 1, -(2**63)):
        assert await api.call("PUT", base, value) == (200, value)
        assert await api.call("GET", "/apps/numbers/n") == (200, {"v": value})
    for raw in (
        b"9223372036854775808",
        b"-9223372036854775809",
        b"18446744073709551616",
    ):
        answer = await api.call("PUT", base, raw=raw)
        assert_refused(answer, 400, "outside the 64-bit range")
    answer = await api.call("PUT", base, raw=b'{"big": [1, 10000000000000000000000]}')
    assert_refused(answer, 400, "$.big[1]", "64-bit")
    for raw in (b"1e400", b'{"x": -1e999}'):
        assert_refused(await api.call("PUT", base, raw=raw), 400, "malformed JSON")
    assert await api.call("GET", "/apps/numbers/n") == (200, {"v": -(2**63)})


async def test_invalid_utf8_in_the_path_query_or_a_header_is_a_400(
    server: Server, api: Api, admin: Identity
) -> None:
    await make_app(api, "utf8")
    for path, words in [
        (f"{APPS}/utf8/kv/c/%FF", "the path is not valid UTF-8"),
        (f"{APPS}/%C3%28", "the path is not valid UTF-8"),
        (f"{APPS}/utf8/kv/c?prefix=%FF%FE", "the query string is not valid UTF-8"),
    ]:
        assert_refused(await api.call("GET", path), 400, words)
    key = (admin.key or "").encode()
    for header in (b"X-Request-Id: \xff\xfe", b"Idempotency-Key: caf\xe9"):
        answer = await raw_exchange(
            server,
            b"POST /api/v1/admin/apps HTTP/1.1\r\nHost: t\r\n"
            b"Authorization: Bearer " + key + b"\r\n" + header + b"\r\n"
            b'Content-Length: 26\r\n\r\n{"slug":"bad8","name":"n"}',
        )
        assert answer.status == 400
        name = header.split(b":")[0].decode()
        assert answer.json()["error"]["message"] == (
            f"the header {name!r} is not valid UTF-8"
        )
    assert (await api.call("GET", f"{APPS}/bad8"))[0] == 404


LISTS = [
    (f"{APPS}/paging/kv/c", 1000),
    (f"{APPS}/paging/docs/c", 1000),
    (f"{APPS}/paging/executions", 500),
    (f"{APPS}/paging/dead-letters", 500),
]


async def test_every_list_checks_limit_and_cursor_alike(api: Api) -> None:
    await make_app(api, "paging")
    for path, most in LISTS:
        message = f"limit must be an integer from 1 to {most}"
        for limit in ("0", str(most + 1), "-1", "1.5", "abc", "\u00b2", "9" * 5000):
            answer = await api.call("GET", f"{path}?limit={limit}")
            assert answer == (
                400,
                {"error": {"code": "invalid_input", "message": message}},
            )
        for cursor in ("%25%25", "!!!", "YQ", "AA%3D%3D"):
            answer = await api.call("GET", f"{path}?cursor={cursor}")
            assert_refused(answer, 400, "malformed cursor")
        status, page = await api.call("GET", f"{path}?limit={most}")
        assert (status, page["cursor"], page["items"]) == (200, None, [])
    # The lists paged by log position take only a cursor one of them answered.
    for path, _ in LISTS[2:]:
        for last in (b"abc", b"9" * 22, b"-1"):
            cursor = base64.urlsafe_b64encode(last).decode()
            answer = await api.call("GET", f"{path}?cursor={cursor}")
            assert_refused(answer, 400, "malformed cursor")


async def test_a_form_that_does_not_parse_is_a_400(
    server: Server, anon: Api, admin: Identity
) -> None:
    signed_in = await login(server.url, admin.username, admin.password)
    cookie = {"Cookie": signed_in.headers["Cookie"]}  # a form may carry the token
    for content_type, raw in [
        ("multipart/form-data; boundary=xx", b"--xx\r\n\r\nno name\r\n--xx--\r\n"),
        ("multipart/form-data; boundary=xx", b"no boundary in sight"),
        ("multipart/form-data", b"--?"),
        ("application/x-www-form-urlencoded", b"\xff\xfe=1"),
    ]:
        answer = await anon.call(
            "POST", APPS, raw=raw, headers={**cookie, "Content-Type": content_type}
        )
        assert_refused(answer, 400, "could not be read", "form data")
