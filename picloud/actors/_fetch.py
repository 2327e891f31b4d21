"""``http.fetch``: outbound HTTP for scripts, safe by default.

Guarantees:
- Only ``http`` and ``https``; the host must be on the app's allowlist (its
  own, else the deployment's ``PICLOUD_FETCH_ALLOWED_HOSTS``; empty: any).
- No private, loopback, link-local (cloud metadata), multicast or otherwise
  non-public address is reached, whether the URL names it or a DNS name
  resolves to it: the connector's resolver checks every address it answers
  and the connection goes to exactly those checked addresses (no second
  lookup a DNS rebinding could change). Every redirect is checked again.
  Loopback ports listed in ``PICLOUD_FETCH_ALLOW_LOOPBACK_PORTS`` (off by
  default) are the one exception, for local development and tests.
- Bounded: request and response sizes, redirects, calls per run and time
  (never past the run's own limit), each named in its error.
- Never blocks the event loop: the aiohttp client, awaited through the
  SDK's bridge. Every failure is an :class:`SdkCallError`, a Lua error the
  script can ``pcall``.

This is the one module of the actors that imports aiohttp (its client): the
import-linter contract makes the exception for it alone. It imports it at
the first fetch, so importing the actors loads no web framework.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import msgspec
from yarl import URL

from picloud.config import Settings
from picloud.domain.app_settings import host_allowed
from picloud.errors import SdkCallError

if TYPE_CHECKING:
    import aiohttp

__all__ = ["FetchAnswer", "FetchLimits", "FetchRequest", "fetch", "parse_request"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Set by the client itself: a script must not smuggle a second request.
_FORBIDDEN_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te"}
    | {"keep-alive", "proxy-authorization", "proxy-connection", "trailer"}
)
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")
_USER_AGENT = "PiCloud-http.fetch"


@dataclass(frozen=True)
class FetchLimits:
    timeout_ms: int
    max_request_bytes: int
    max_response_bytes: int
    max_redirects: int
    max_calls: int
    loopback_ports: frozenset[int]

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchLimits:
        ports = frozenset(
            int(p) for p in settings.fetch_allow_loopback_ports.split(",") if p.strip()
        )
        return cls(
            timeout_ms=settings.fetch_timeout_ms,
            # A response reaches the script as one Lua string: within its limit.
            max_response_bytes=min(
                settings.fetch_max_response_bytes, settings.script_max_value_bytes - 64
            ),
            max_request_bytes=settings.fetch_max_request_bytes,
            max_redirects=settings.fetch_max_redirects,
            max_calls=settings.fetch_max_calls_per_run,
            loopback_ports=ports,
        )


class FetchRequest(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    timeout_ms: int


class FetchAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """What ``http.fetch`` answers: ``{status, headers, body}``."""

    status: int
    headers: dict[str, str]
    """Lower-case names; repeated headers joined with ``, ``."""
    body: bytes

    def to_script(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "headers": self.headers,
            "body": self.body.decode("utf-8", "replace"),
        }


def _limit(name: str, value: int, unit: str = "bytes") -> str:
    return f"the {name} limit ({value} {unit})"


def parse_request(args: list[Any], limits: FetchLimits) -> FetchRequest:
    """The script's ``http.fetch(url, {method, headers, body, timeout_ms})``."""
    url = args[0] if args else None
    if not isinstance(url, str) or not url:
        raise SdkCallError("the URL must be a non-empty string")
    opts = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
    unknown = sorted(set(opts) - {"method", "headers", "body", "timeout_ms"})
    if unknown:
        raise SdkCallError(f"unknown option {unknown[0][:40]!r}")
    method = str(opts.get("method") or "GET").upper()
    if method not in _METHODS:
        raise SdkCallError(f"method {method[:20]!r} is not one of {sorted(_METHODS)}")
    body = opts.get("body")
    headers = _headers(opts.get("headers"))
    if isinstance(body, dict | list):
        body = msgspec.json.encode(body)
        headers.setdefault("content-type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    elif body is not None:
        raise SdkCallError("body must be a string or a table (sent as JSON)")
    if body is not None and len(body) > limits.max_request_bytes:
        raise SdkCallError(
            "the request body exceeds "
            + _limit("fetch_max_request_bytes", limits.max_request_bytes)
        )
    timeout = opts.get("timeout_ms") or limits.timeout_ms
    return FetchRequest(
        method=method,
        url=url,
        headers=headers,
        body=body or b"",
        timeout_ms=min(int(timeout), limits.timeout_ms),
    )


def _headers(given: Any) -> dict[str, str]:
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise SdkCallError("headers must be a table of names to strings")
    headers: dict[str, str] = {}
    for name, value in given.items():
        key = name.lower()
        if not key or not set(key) <= _TOKEN:
            raise SdkCallError(f"invalid header name {name[:40]!r}")
        if key in _FORBIDDEN_HEADERS:
            raise SdkCallError(f"the header {key!r} is set by http.fetch itself")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise SdkCallError(f"the header {key!r} must be a string")
        text = str(value)
        if "\r" in text or "\n" in text or "\0" in text:
            raise SdkCallError(f"the header {key!r} holds a line break or NUL")
        headers[key] = text
    return headers


# -- where a fetch may go ---------------------------------------------------------


def _refusal(address: str, port: int, loopback_ports: frozenset[int]) -> str | None:
    """Why ``address`` must not be reached, or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if port in loopback_ports else "a loopback address"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services live)"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return "not a public address"
    return None


class _Refused(Exception):
    """A destination http.fetch may not reach (raised out of the connector)."""


class _GuardedResolver:
    """Resolves, then refuses the whole name if any address is not public:
    the connector connects only to the addresses answered here. (aiohttp's
    AbstractResolver by its shape: subclassing it would import aiohttp.)"""

    def __init__(self, loopback_ports: frozenset[int]) -> None:
        self._loopback_ports = loopback_ports

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, family=family
        )
        results: list[dict[str, Any]] = []
        for fam, _, proto, _, sockaddr in infos:
            address = str(sockaddr[0])
            refused = _refusal(address, port, self._loopback_ports)
            if refused is not None:
                raise _Refused(f"{host} resolves to {refused} ({address})")
            results.append(
                {
                    "hostname": host,
                    "host": address,
                    "port": port,
                    "family": fam,
                    "proto": proto,
                    "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                }
            )
        return results

    async def close(self) -> None:
        return None


def _check_url(url: URL, allowed: tuple[str, ...], limits: FetchLimits) -> None:
    if url.scheme not in ("http", "https"):
        raise SdkCallError(
            f"only http and https URLs can be fetched, not {url.scheme[:20]!r}"
        )
    host = url.host
    if not host:
        raise SdkCallError("the URL has no host")
    if not host_allowed(host, allowed):
        raise SdkCallError(f"host {host[:100]!r} is not in the app's fetch allowlist")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return  # a name: the resolver checks what it resolves to
    refused = _refusal(host, url.port or 0, limits.loopback_ports)
    if refused is not None:
        raise SdkCallError(f"{host} is {refused}, which scripts may not reach")


# -- the fetch ----------------------------------------------------------------------


async def fetch(
    request: FetchRequest, *, allowed: tuple[str, ...], limits: FetchLimits
) -> FetchAnswer:
    """Perform ``request``, following redirects; SdkCallError for any failure."""
    import aiohttp  # noqa: PLC0415  # the first fetch loads it (module docstring)

    try:
        url = URL(request.url)
    except ValueError as e:
        raise SdkCallError(f"invalid URL: {e}") from None
    resolver = _GuardedResolver(limits.loopback_ports)
    connector = aiohttp.TCPConnector(
        resolver=cast("aiohttp.abc.AbstractResolver", resolver),
        use_dns_cache=False,  # every connection asks the guarded resolver
        force_close=True,
    )
    timeout = aiohttp.ClientTimeout(total=request.timeout_ms / 1000)
    try:
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, trust_env=False
        ) as session:
            return await _follow(session, request, url, allowed, limits)
    except _Refused as e:
        raise SdkCallError(f"{e}, which scripts may not reach") from None
    except TimeoutError:
        raise SdkCallError(f"no answer within {request.timeout_ms} ms") from None
    except aiohttp.ClientError as e:
        raise SdkCallError(_reason(e)) from None


def _reason(error: Exception) -> str:
    cause = error.__cause__ or error
    if isinstance(cause, _Refused):
        return f"{cause}, which scripts may not reach"
    return f"the request failed: {str(cause)[:300] or type(cause).__name__}"


async def _follow(
    session: aiohttp.ClientSession,
    request: FetchRequest,
    url: URL,
    allowed: tuple[str, ...],
    limits: FetchLimits,
) -> FetchAnswer:
    method, headers, body = request.method, dict(request.headers), request.body
    headers.setdefault("user-agent", _USER_AGENT)
    for hop in range(limits.max_redirects + 1):
        _check_url(url, allowed, limits)
        async with session.request(
            method, url, headers=headers, data=body or None, allow_redirects=False
        ) as response:
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or location is None:
                return await _answer(response, limits)
        if hop == limits.max_redirects:
            break
        target = url.join(URL(location))
        if (target.scheme, target.host, target.port) != (
            url.scheme,
            url.host,
            url.port,
        ):
            headers.pop("authorization", None)  # never to another origin
            headers.pop("cookie", None)
        if response.status == 303 or (
            response.status in (301, 302) and method == "POST"
        ):
            method, body = "GET", b""
            headers.pop("content-type", None)
        url = target
    raise SdkCallError(
        "too many redirects: "
        + _limit("fetch_max_redirects", limits.max_redirects, "redirects")
    )


async def _answer(response: aiohttp.ClientResponse, limits: FetchLimits) -> FetchAnswer:
    most = limits.max_response_bytes
    too_large = "the response body exceeds " + _limit("fetch_max_response_bytes", most)
    if (response.content_length or 0) > most:
        raise SdkCallError(too_large)
    data = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > most:
            raise SdkCallError(too_large)
    headers: dict[str, str] = {}
    for name, value in response.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return FetchAnswer(status=response.status, headers=headers, body=bytes(data))
