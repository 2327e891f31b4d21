"""What both listeners do for every request: its ``X-Request-Id``, its line
in the access log and its samples in the metrics.

The request id is the caller's ``X-Request-Id`` when it is sane (1-128
visible ASCII characters), else one made here; every answer carries it, and
an app's run records it (``request_id`` of the execution). The access log
(logger ``picloud.access``, INFO) has one line per request: listener,
method, path (never the query string, where callers put tokens), status,
duration, app, route pattern and request id; never a header. Metrics are
labelled with the route's pattern, never the raw path, and with the app
only once the request reached one that exists (labels stay bounded).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web
from multidict import CIMultiDictProxy

from picloud.metrics import HTTP_REQUESTS, HTTP_SECONDS

__all__ = [
    "REQUEST_ID",
    "REQUEST_ID_HEADER",
    "echo_request_id",
    "new_request_id",
    "observe_middleware",
    "observed",
    "request_id_of",
]

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)
"""The request's id (:func:`request_id_of`), set before any handler runs."""

Listener = Literal["admin", "apps"]

_SANE = re.compile(r"[\x21-\x7e]{1,128}")
_CLIENT_GONE = 499  # nginx's status for a client that closed before the answer
_MAX_LOGGED_PATH = 300

access_log = logging.getLogger("picloud.access")


def new_request_id() -> str:
    return secrets.token_hex(16)


# A label's values must be bounded: aiohttp accepts any method token.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@functools.lru_cache(maxsize=16_384)
def _series(
    listener: Listener, app: str, route: str, method: str, status: int
) -> tuple[Any, Any]:
    """The labelled counter and histogram of one kind of request, looked up
    once: each ``labels()`` call costs ~2 µs (a lock and a validation)."""
    return (
        HTTP_REQUESTS.labels(listener, app, route, method, str(status)),
        HTTP_SECONDS.labels(listener, app, route),
    )


def request_id_of(headers: CIMultiDictProxy[str]) -> str:
    """The caller's ``X-Request-Id`` if sane, else a new one."""
    given = headers.get(REQUEST_ID_HEADER)
    if given is not None and _SANE.fullmatch(given):
        return given
    return new_request_id()


def observed(  # noqa: PLR0913  # one request's facts, each named
    listener: Listener,
    request: web.BaseRequest,
    *,
    status: int,
    started: float,
    app: str,
    route: str,
    request_id: str,
) -> None:
    """Count the answered request and write its access log line."""
    seconds = time.perf_counter() - started
    method = request.method if request.method in _METHODS else "other"
    count, duration = _series(listener, app, route, method, status)
    count.inc()
    duration.observe(seconds)
    if access_log.isEnabledFor(logging.INFO):
        path = request.path[:_MAX_LOGGED_PATH]
        access_log.info(
            "%s %s %d",
            request.method,
            path,
            status,
            extra={
                "listener": listener,
                "method": request.method,
                "path": path,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "app": app,
                "route": route,
                "request_id": request_id,
            },
        )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def observe_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """The admin listener's: outside the error middleware, so it sees every
    answer's final status."""
    request_id = request[REQUEST_ID] = request_id_of(request.headers)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
    except web.HTTPException as e:  # a redirect (the error middleware answers the rest)
        status = e.status
        raise
    except asyncio.CancelledError:
        status = _CLIENT_GONE
        raise
    else:
        status = response.status
        return response
    finally:
        resource = request.match_info.route.resource
        route = "" if resource is None else resource.canonical
        app = request.match_info.get("app", "") if status < 400 else ""
        observed(
            "admin",
            request,
            status=status,
            started=started,
            app=app,
            route=route,
            request_id=request_id,
        )


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` of the admin app: every answer, streamed ones
    and errors included, carries the request's id."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id
