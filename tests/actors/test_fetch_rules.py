"""Where http.fetch may go, as pure rules: addresses, allowlists, requests."""

from __future__ import annotations

from typing import Any

import pytest

from picloud.actors._fetch import FetchLimits, _refusal, parse_request
from picloud.config import Settings
from picloud.domain.app_settings import check_host_pattern, host_allowed
from picloud.errors import InvalidInput, SdkCallError

NO_PORTS: frozenset[int] = frozenset()


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.5.6.7", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4 mapped into IPv6
        ("10.0.0.1", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00:ec2::254", "private"),  # AWS's metadata over IPv6
        ("169.254.169.254", "link-local"),  # the metadata address
        ("fe80::1", "link-local"),
        ("100.100.100.200", "not a public address"),  # shared space (Alibaba)
        ("224.0.0.1", "not a public address"),
        ("0.0.0.0", "private"),  # noqa: S104  # refused, never bound
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str, why: str) -> None:
    refused = _refusal(address, 80, NO_PORTS)
    assert refused is not None
    assert why in refused


def test_public_addresses_and_allowed_loopback_ports_pass() -> None:
    assert _refusal("93.184.216.34", 443, NO_PORTS) is None
    assert _refusal("2606:2800:220:1::1", 443, NO_PORTS) is None
    assert _refusal("127.0.0.1", 8099, frozenset({8099})) is None
    assert _refusal("127.0.0.1", 8100, frozenset({8099})) == "a loopback address"
    assert _refusal("10.0.0.1", 8099, frozenset({8099})) == "a private address"


def test_allowlists_match_hosts_and_subdomains() -> None:
    hosts = ("api.example.com", "*.example.org")
    assert host_allowed("api.example.com", hosts)
    assert host_allowed("API.Example.com.", hosts)
    assert host_allowed("a.b.example.org", hosts)
    assert not host_allowed("example.org", hosts)
    assert not host_allowed("api.example.com.evil.test", hosts)
    assert host_allowed("anything.test", ())
    for bad in ("http://x", "x/y", "x:80", "*", "a..b"):
        with pytest.raises(InvalidInput):
            check_host_pattern(bad)


def test_requests_are_checked_before_anything_is_sent() -> None:
    limits = FetchLimits.from_settings(Settings(fetch_max_request_bytes=10))
    request = parse_request(
        ["https://a.test/x", {"method": "post", "body": {"a": 1}}], limits
    )
    assert (request.method, request.body) == ("POST", b'{"a":1}')
    assert request.headers["content-type"] == "application/json"
    cases: list[tuple[list[Any], str]] = [
        ([""], "non-empty"),
        (["u", {"method": "BREW"}], "method"),
        (["u", {"headers": {"Host": "x"}}], "set by http.fetch"),
        (["u", {"headers": {"X": "a\r\nB: c"}}], "line break"),
        (["u", {"headers": {"bad name": "v"}}], "invalid header name"),
        (["u", {"body": "x" * 11}], r"fetch_max_request_bytes limit \(10 bytes\)"),
        (["u", {"body": True}], "body must be"),
        (["u", {"cookies": 1}], "unknown option"),
    ]
    for args, fragment in cases:
        with pytest.raises(SdkCallError, match=fragment):
            parse_request(args, limits)
