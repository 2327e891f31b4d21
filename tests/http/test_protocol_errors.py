"""Malformed HTTP and stalled bodies, over raw sockets: the JSON error shape
with a fitting status, never the request's bytes echoed, never a connection
held for minutes."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from picloud.server import Server
from tests.http.helpers import Api, Identity, make_app, make_route, raw_exchange

pytestmark = [pytest.mark.ray, pytest.mark.server, pytest.mark.shared_server]

READ_TIMEOUT_S = 1.0
LINGER_S = 10.0  # aiohttp reads what a client still sends for this long, then closes


@pytest.fixture(scope="module")
def module_overrides() -> dict[str, Any]:
    return {"body_read_timeout_ms": int(READ_TIMEOUT_S * 1000)}


HEAD = b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
SECRET = b"s3cr3t"
"""Put in each malformed request; the answer must not repeat it."""

MALFORMED: list[tuple[str, bytes, int, str]] = [
    (
        "a request line over the limit",
        b"GET /" + SECRET * 2000 + HEAD + b"\r\n",
        431,
        "request_header_too_large",
    ),
    (
        "a header field over the limit",
        b"GET /healthz" + HEAD + b"X-Note: " + SECRET * 2000 + b"\r\n\r\n",
        431,
        "request_header_too_large",
    ),
    (
        "too many header fields",
        b"GET /healthz"
        + HEAD
        + b"".join(b"X-%s-%d: 1\r\n" % (SECRET, n) for n in range(200))
        + b"\r\n",
        431,
        "request_header_too_large",
    ),
    ("an unknown method", b"S3CR3T /healthz" + HEAD + b"\r\n", 501, "not_implemented"),
    (
        "a byte HTTP forbids in the URL",
        b"GET /a\xff" + SECRET + HEAD + b"\r\n",
        400,
        "",
    ),
    ("a NUL in the URL", b"GET /a\x00" + SECRET + HEAD + b"\r\n", 400, ""),
    ("a space in the URL", b"GET /a " + SECRET + HEAD + b"\r\n", 400, ""),
    ("a header without a colon", b"GET /" + HEAD + SECRET + b"\r\n\r\n", 400, ""),
    (
        "a malformed Content-Length",
        b"POST /api/v1/auth/login" + HEAD + b"Content-Length: " + SECRET + b"\r\n\r\n",
        400,
        "",
    ),
    (
        "a broken chunked body",
        b"POST /api/v1/auth/login"
        + HEAD
        + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nzz"
        + SECRET
        + b"\r\n",
        400,
        "",
    ),
    ("an unknown HTTP version", b"GET /" + SECRET + b" HTTP/7.1\r\n\r\n", 400, ""),
    (
        "TLS on the plain port",
        b"\x16\x03\x01\x02\x00\x01" + SECRET + b"\r\n\r\n",
        400,
        "",
    ),
]


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
async def test_malformed_http_is_a_json_error_that_does_not_echo_it(
    server: Server, request_bytes: bytes, status: int, code: str
) -> None:
    answer = await raw_exchange(server, request_bytes, until_closed=True)
    assert answer.status == status
    error = answer.json()["error"]
    assert error["code"] == (code or "bad_request")
    assert isinstance(error["message"], str)
    assert error["message"]
    assert SECRET not in answer.body
    assert SECRET.decode() not in str(answer.headers)
    # The server goes on answering well-formed requests.
    fine = await raw_exchange(server, b"GET /api/v1/openapi.json" + HEAD + b"\r\n")
    assert fine.status == 200


def _post(path: str, declared: int, sent: bytes, headers: bytes = b"") -> bytes:
    return (
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + headers
        + b"Content-Type: application/json\r\n"
        + b"Content-Length: %d\r\n\r\n" % declared
        + sent
    )  # fmt: skip


async def test_a_body_that_stalls_is_a_408_within_the_read_timeout(
    server: Server, shared_admin: Identity
) -> None:
    bearer = b"Authorization: Bearer " + (shared_admin.key or "").encode() + b"\r\n"
    stalled = [
        _post("/api/v1/admin/apps", 1000, b'{"slug": "s', bearer),
        _post("/api/v1/auth/login", 1000, b'{"username"'),  # public: no auth first
    ]
    # Both at once: each waits out the read timeout, then aiohttp's linger.
    answers = await asyncio.gather(
        *(
            raw_exchange(
                server, r, within=READ_TIMEOUT_S + LINGER_S + 5, until_closed=True
            )
            for r in stalled
        )
    )
    for answer in answers:
        assert answer.status == 408
        assert answer.json()["error"]["code"] == "request_timeout"
        assert READ_TIMEOUT_S * 0.9 <= answer.seconds < READ_TIMEOUT_S + 3
        assert answer.headers["connection"].lower() == "close"


async def test_a_whole_body_within_the_timeout_is_read(
    server: Server, shared_admin: Identity
) -> None:
    bearer = b"Authorization: Bearer " + (shared_admin.key or "").encode() + b"\r\n"
    body = b'{"slug": "on-time", "name": "n"}'
    answer = await raw_exchange(
        server,
        _post("/api/v1/admin/apps", len(body), body, bearer + b"Connection: close\r\n"),
    )
    assert answer.status == 201, answer.body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [(case[1], case[2]) for case in MALFORMED[3:6]],
    ids=[case[0] for case in MALFORMED[3:6]],
)
async def test_the_apps_listener_answers_malformed_http_as_json_too(
    server: Server, request_bytes: bytes, status: int
) -> None:
    answer = await raw_exchange(server, request_bytes, until_closed=True, apps=True)
    assert answer.status == status
    assert answer.json()["error"]["message"]
    assert SECRET not in answer.body


async def _echo_app(server: Server, admin: Identity) -> None:
    async with aiohttp.ClientSession(headers=admin.bearer) as session:
        api = Api(session, server.url, apps_base=server.apps_url)
        await make_app(api, "rawecho")
        await make_route(
            api, "rawecho", "return {n = #ctx.request.body}", method="POST", path="/"
        )


async def test_an_app_route_refuses_bad_utf8_and_a_stalled_body(
    server: Server, shared_admin: Identity
) -> None:
    await _echo_app(server, shared_admin)
    bad = (
        b"POST /apps/rawecho/ HTTP/1.1\r\nHost: t\r\nX-Name: caf\xe9\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
    answer = await raw_exchange(server, bad, apps=True)
    assert answer.status == 400
    assert "not valid UTF-8" in answer.json()["error"]["message"]
    stalled = await raw_exchange(
        server,
        _post("/apps/rawecho/", 1000, b"{"),
        within=READ_TIMEOUT_S + LINGER_S + 5,
        apps=True,
    )
    assert stalled.status == 408
    assert stalled.seconds < READ_TIMEOUT_S + 2
    fine = await raw_exchange(
        server,
        _post("/apps/rawecho/", 2, b"{}", b"Connection: close\r\n"),
        apps=True,
    )
    assert (fine.status, fine.json()) == (200, {"n": 2})
