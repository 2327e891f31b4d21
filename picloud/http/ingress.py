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
import re
import secrets

from aiohttp import web

from picloud.actors.protocol import Failure, HttpReply, Reply, unwrap
from picloud.domain.commands import Invoke, MarkAbandoned
from picloud.errors import CommandTimeout, NotFound, PayloadTooLarge, PiCloudError
from picloud.events.app import RequestRecord
from picloud.http._api import json_response
from picloud.http._errors import RETRY_AFTER_S, error_body, error_response, status_of
from picloud.http.routing import Match, NoApp
from picloud.http.state import Services

__all__ = ["EXECUTION_HEADER", "serve_apps_first"]

EXECUTION_HEADER = "X-PiCloud-Execution-Id"

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Hop-by-hop headers are the front door's; the execution id is its own too.
_NOT_FROM_SCRIPTS = frozenset(
    {"connection", "content-length", "transfer-encoding", "keep-alive", "upgrade"}
    | {EXECUTION_HEADER.lower()}
)


async def _handle(
    services: Services, request: web.BaseRequest, slug: str, path: str
) -> web.StreamResponse:
    match = services.routing.resolve(slug, request.method, path)
    if isinstance(match, NoApp):
        raise NotFound(f"no app {slug[:80]!r}")
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
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge as e:
        limit = services.settings.max_request_bytes
        raise PayloadTooLarge(f"request body larger than {limit} bytes") from e
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
        correlation_id=request.headers.get("X-Request-Id"),
    )
    timeout = services.settings.sync_timeout_ms / 1000
    try:
        reply = await services.hosts.call(match.app_id, command, timeout)
    except CommandTimeout:
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
            return _error(status_of(e), e.code, e.message, execution_id)
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
    command = MarkAbandoned(
        execution_id=execution_id, idempotency_key=f"abandon-{execution_id}"
    )
    reply = await services.hosts.call(
        app_id, command, services.settings.sync_timeout_ms / 1000
    )
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
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def serve_apps_first(server: web.Server, services: Services) -> None:
    """Send app requests to the ingress ahead of the Application's router and
    middleware chain; every other request reaches the Application as before.

    ``/apps/{slug}/{path}`` and, with ``PICLOUD_DOMAIN``, any path on
    ``{slug}.{domain}``. App requests are the hot path: resolving them among
    the admin routes and building the middleware chain cost ~13% of the front
    door's time per request. Errors answer as the error middleware's do.
    """
    application = server.request_handler
    domain = services.settings.domain
    suffix = "." + domain.lower().strip(".") if domain else None

    async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
        if suffix is not None:
            host = (request.host or "").split(":", 1)[0].lower()
            if host.endswith(suffix) and len(host) > len(suffix):
                return await _answer(request, host[: -len(suffix)], request.path)
        path = request.path
        if path.startswith("/apps/"):
            slug, _, rest = path[6:].partition("/")
            return await _answer(request, slug, "/" + rest)
        return await application(request)

    async def _answer(
        request: web.BaseRequest, slug: str, path: str
    ) -> web.StreamResponse:
        try:
            return await _handle(services, request, slug, path)
        except Exception as e:  # noqa: BLE001  # as the error middleware: error_response logs
            return error_response(request, e)

    server.request_handler = dispatch
