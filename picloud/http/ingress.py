"""The front door's hot path: ``/apps/{slug}/{path}`` (or ``Host: {slug}.{domain}``)
→ routing table → the app's actor → the script's answer.

The front door never runs scripts and holds no app data. Unknown app or route
→ 404, known path with another method → 405 (with ``Allow``), body over the
limit → 413, the app's actor not answering within ``PICLOUD_SYNC_TIMEOUT_MS``
→ 504 with the execution id (and the actor records the execution abandoned).
"""

from __future__ import annotations

import functools
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from picloud.actors.protocol import Failure, HttpReply, Reply, failure_of, unwrap
from picloud.domain.commands import Invoke, MarkAbandoned
from picloud.domain.credentials import looks_like_key
from picloud.errors import CommandTimeout, NotFound, PiCloudError
from picloud.events.app import RequestRecord
from picloud.http._api import json_response
from picloud.http._auth import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from picloud.http._cors import allow_origin, preflight
from picloud.http._errors import RETRY_AFTER_S, error_body, error_response, status_of
from picloud.http._input import check_request, read_within
from picloud.http._observe import REQUEST_ID_HEADER, observed, request_id_of
from picloud.http.routing import Match, NoApp
from picloud.http.state import Services
from picloud.metrics import EXECUTIONS

__all__ = ["EXECUTION_HEADER", "apps_handler"]

EXECUTION_HEADER = "X-PiCloud-Execution-Id"

log = logging.getLogger(__name__)

_CLIENT_GONE = 499  # the caller closed the connection before the answer
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Hop-by-hop headers are the front door's; the execution id is its own too.
_NOT_FROM_SCRIPTS = frozenset(
    {"connection", "content-length", "transfer-encoding", "keep-alive", "upgrade"}
    | {EXECUTION_HEADER.lower(), REQUEST_ID_HEADER.lower()}
)


class _Seen:
    """What the metrics and the access log learn of a request on its way:
    its id, and its app and route once found (empty until then)."""

    __slots__ = ("app", "request_id", "route")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.app = ""
        self.route = ""


async def _handle(
    services: Services, request: web.BaseRequest, slug: str, path: str, seen: _Seen
) -> web.StreamResponse:
    cors = services.routing.cors(slug)
    answer: web.StreamResponse | None = preflight(cors, request)
    if answer is None:
        answer = await _route(services, request, slug, path, seen)
    allow_origin(cors, request, answer, EXECUTION_HEADER, REQUEST_ID_HEADER)
    return answer


async def _route(
    services: Services, request: web.BaseRequest, slug: str, path: str, seen: _Seen
) -> web.StreamResponse:
    match = services.routing.resolve(slug, request.method, path)
    if isinstance(match, NoApp):
        raise NotFound(f"no app {slug[:80]!r}")
    seen.app = slug
    if not isinstance(match, Match):
        if not match.allowed:
            raise NotFound(f"app {slug!r} has no route for {path[:200]}")
        response = json_response(
            error_body(
                "method_not_allowed",
                f"{request.method} is not allowed on {path[:200]}; "
                f"allowed: {', '.join(match.allowed)}",
            ),
            405,
        )
        response.headers["Allow"] = ", ".join(match.allowed)
        return response
    seen.route = match.pattern
    check_request(request, nul=False)  # a script may take a NUL, not bad UTF-8
    # No body (a GET): no read, and no timer armed for it (asyncio.timeout
    # costs ~11 µs here, a tenth of the front door's whole request).
    body = b""
    if request.body_exists:
        body = await read_within(services.settings, request.read())
    execution_id = secrets.token_hex(16)
    command = Invoke(
        execution_id=execution_id,
        route_id=match.route_id,
        request=RequestRecord(
            method=request.method,
            path=path,
            params=match.params,
            query=_first_values(request),
            headers=_headers(request),
            body=body,
        ),
        idempotency_key=request.headers.get("Idempotency-Key"),
        correlation_id=seen.request_id,
    )
    timeout = services.settings.sync_timeout_ms / 1000
    try:
        reply = await services.hosts.call(match.app_id, command, timeout)
    except CommandTimeout:
        EXECUTIONS.labels("abandoned").inc()
        services.background(_mark_abandoned(services, match.app_id, execution_id))
        message = f"the app did not answer within {timeout:g}s"
        return _error(504, "timeout", message, execution_id)
    return _response(reply, execution_id)


def _response(reply: Reply, execution_id: str) -> web.Response:
    if isinstance(reply, HttpReply):
        headers = {
            name: value
            for name, value in reply.headers.items()
            if _allowed_header(name) and _safe(value)
        }
        headers[EXECUTION_HEADER] = execution_id
        return web.Response(status=reply.status, body=reply.body, headers=headers)
    if isinstance(reply, Failure):
        try:
            unwrap(reply)
        except PiCloudError as e:
            response = _error(status_of(e), e.code, e.message, execution_id)
            if reply.retry_after is not None:
                response.headers["Retry-After"] = str(
                    max(1, math.ceil(reply.retry_after))
                )
            return response
    message = "this Idempotency-Key was already used for a request that ran"
    return _error(409, "duplicate_request", message, execution_id)


@functools.lru_cache(maxsize=1024)
def _allowed_header(name: str) -> bool:
    """A script may set this header: a valid name, not a hop-by-hop one."""
    return bool(_TOKEN.fullmatch(name)) and name.lower() not in _NOT_FROM_SCRIPTS


def _safe(value: str) -> bool:
    return "\n" not in value and "\r" not in value


def _error(status: int, code: str, message: str, execution_id: str) -> web.Response:
    body = error_body(code, message)
    body["error"]["execution_id"] = execution_id
    response = json_response(body, status)
    response.headers[EXECUTION_HEADER] = execution_id
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


async def _mark_abandoned(services: Services, app_id: str, execution_id: str) -> None:
    """Record the run the caller gave up on; a host that still does not
    answer is an expected condition: one line in the log, no traceback."""
    command = MarkAbandoned(
        execution_id=execution_id, idempotency_key=f"abandon-{execution_id}"
    )
    try:
        reply = await services.hosts.call(
            app_id, command, services.settings.sync_timeout_ms / 1000
        )
    except PiCloudError as e:
        reply = failure_of(e)
    if isinstance(reply, Failure):
        log.warning(
            "could not record execution %s as abandoned: %s",
            execution_id,
            reply.message,
        )


def _first_values(request: web.BaseRequest) -> dict[str, str]:
    query: dict[str, str] = {}
    for key, value in request.query.items():
        query.setdefault(key, value)
    return query


def _headers(request: web.BaseRequest) -> dict[str, str]:
    """The request's headers for the script: names lower-cased, repeats joined,
    and never PiCloud's own credentials (its session and CSRF cookies, its CSRF
    header, an ``Authorization`` that carries a PiCloud API key)."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    authorization = headers.get("authorization")
    if authorization is not None and _picloud_key(authorization):
        del headers["authorization"]
    headers.pop(CSRF_HEADER.lower(), None)
    cookies = headers.get("cookie")
    if cookies is not None:
        kept = "; ".join(c for c in _cookies(cookies) if not c.startswith(_OURS))
        if kept:
            headers["cookie"] = kept
        else:
            del headers["cookie"]
    return headers


def _picloud_key(authorization: str) -> bool:
    scheme, _, secret = authorization.partition(" ")
    return scheme.lower() == "bearer" and looks_like_key(secret.strip())


def _cookies(header: str) -> list[str]:
    return [part.strip() for part in header.split(";") if part.strip()]


_OURS = (f"{SESSION_COOKIE}=", f"{CSRF_COOKIE}=")


def _app_path(path: str) -> tuple[str, str]:
    """(slug, path in the app) of ``/apps/{slug}/{path}``."""
    if not path.startswith("/apps/"):
        raise NotFound(f"no such path: {path[:200]} (app routes are /apps/{{slug}}/…)")
    slug, _, rest = path[6:].partition("/")
    return slug, "/" + rest


Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def apps_handler(services: Services) -> Handler:
    """The handler of the apps listener (a low-level aiohttp server: no router,
    no middleware chain; app requests are the hot path).

    ``/apps/{slug}/{path}`` and, with ``PICLOUD_DOMAIN``, any path on
    ``{slug}.{domain}``; anything else is a JSON 404. The admin API and the
    dashboard live on the other listener, another origin, so a script never
    receives an admin's cookies.
    """
    domain = services.settings.domain
    suffix = "." + domain.lower().strip(".") if domain else None

    async def answer(request: web.BaseRequest, seen: _Seen) -> web.StreamResponse:
        try:
            if suffix is not None:
                host = (request.host or "").split(":", 1)[0].lower()
                if host.endswith(suffix) and len(host) > len(suffix):
                    slug = host[: -len(suffix)]
                    return await _handle(services, request, slug, request.path, seen)
            slug, path = _app_path(request.path)
            return await _handle(services, request, slug, path, seen)
        except Exception as e:  # noqa: BLE001  # as the error middleware: error_response logs
            return error_response(request, e)

    async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
        seen = _Seen(request_id_of(request.headers))
        started = time.perf_counter()
        status = _CLIENT_GONE
        try:
            response = await answer(request, seen)
            response.headers[REQUEST_ID_HEADER] = seen.request_id
            status = response.status
            return response
        finally:
            observed(
                "apps",
                request,
                status=status,
                started=started,
                app=seen.app,
                route=seen.route,
                request_id=seen.request_id,
            )

    return dispatch
