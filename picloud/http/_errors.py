"""The one error middleware: every failure becomes ``{"error": {code, message}}``.

PiCloudErrors map to their status by class; aiohttp's own HTTP errors (unknown
path, wrong method, body too large) keep their status with a JSON body; any
other exception is a 500 whose message carries an id to find it in the logs,
never a stack trace.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from picloud import errors
from picloud.http._api import json_response

__all__ = [
    "RETRY_AFTER_S",
    "error_body",
    "error_middleware",
    "error_response",
    "status_of",
]

log = logging.getLogger(__name__)

# Most specific first: the first class that matches decides.
_STATUS: list[tuple[type[errors.PiCloudError], int]] = [
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.InvalidInput, 400),
    (errors.NotFound, 404),
    (errors.MethodNotAllowed, 405),
    (errors.RequestTimeout, 408),
    (errors.Conflict, 409),
    (errors.PayloadTooLarge, 413),
    (errors.TooManyRequests, 429),
    (errors.RequestError, 400),
    (errors.ScriptSyntaxError, 400),
    (errors.ModuleError, 400),
    (errors.VersionConflict, 409),
    (errors.UnstorableValue, 400),
    (errors.CommandTimeout, 504),
    (errors.ActorUnavailable, 503),
    (errors.StoreUnavailable, 503),
]

RETRY_AFTER_S = 1
"""What a 503 tells the client to wait: an outage of the database or of an
app's host lasts seconds (the embedded Postgres restarts in about one)."""

_AIOHTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def status_of(error: errors.PiCloudError) -> int:
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 500


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(request: web.BaseRequest, error: Exception) -> web.Response:
    """The JSON answer to ``error`` raised while handling ``request``; an
    aiohttp HTTPException below 400 (a redirect) is raised again."""
    if isinstance(error, errors.PiCloudError):
        return _answer(request, error)
    if isinstance(error, web.HTTPException):
        if error.status < 400:
            raise error
        code = _AIOHTTP_CODES.get(error.status, "http_error")
        message = error.reason
        if error.status == 404:
            message = f"no such path: {request.path}"
        elif error.status == 405:
            message = f"method {request.method} is not allowed on {request.path}"
        response = json_response(error_body(code, message), error.status)
        if "Allow" in error.headers:
            response.headers["Allow"] = error.headers["Allow"]
        return response
    # The task root of a request: log it and answer 500.
    error_id = uuid.uuid4().hex[:12]
    log.error(
        "internal error %s on %s %s",
        error_id,
        request.method,
        request.path,
        exc_info=error,
    )
    return json_response(
        error_body("internal", f"internal error (id {error_id})"), status=500
    )


def _answer(request: web.BaseRequest, error: errors.PiCloudError) -> web.Response:
    status = status_of(error)
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.path, error)
    response = json_response(error_body(error.code, error.message), status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="picloud"'
    if isinstance(error, errors.TooManyRequests):
        retry_after = max(1, math.ceil(error.retry_after))
        response.headers["Retry-After"] = str(retry_after)
    elif status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    if isinstance(error, errors.RequestTimeout):
        response.force_close()  # the rest of the body may never come
    return response


@web.middleware
async def error_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as e:  # noqa: BLE001  # every failure answers as JSON; error_response logs the unexpected
        return error_response(request, e)
