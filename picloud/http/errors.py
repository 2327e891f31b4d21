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
from picloud.http.api import json_response

__all__ = ["error_body", "error_middleware", "status_of"]

log = logging.getLogger(__name__)

# Most specific first: the first class that matches decides.
_STATUS: list[tuple[type[errors.PiCloudError], int]] = [
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.InvalidInput, 400),
    (errors.NotFound, 404),
    (errors.MethodNotAllowed, 405),
    (errors.Conflict, 409),
    (errors.PayloadTooLarge, 413),
    (errors.TooManyRequests, 429),
    (errors.RequestError, 400),
    (errors.ScriptSyntaxError, 400),
    (errors.ModuleError, 400),
    (errors.VersionConflict, 409),
    (errors.CommandTimeout, 504),
    (errors.ActorUnavailable, 503),
    (errors.StoreUnavailable, 503),
]

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


@web.middleware
async def error_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.PiCloudError as e:
        status = status_of(e)
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.path, e)
        response = json_response(error_body(e.code, e.message), status)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="picloud"'
        if isinstance(e, errors.TooManyRequests):
            response.headers["Retry-After"] = str(max(1, math.ceil(e.retry_after)))
        return response
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = _AIOHTTP_CODES.get(e.status, "http_error")
        message = e.reason if e.status != 404 else f"no such path: {request.path}"
        if e.status == 405:
            message = f"method {request.method} is not allowed on {request.path}"
        response = json_response(error_body(code, message), e.status)
        if "Allow" in e.headers:
            response.headers["Allow"] = e.headers["Allow"]
        return response
    except Exception:  # the task root of a request: log it and answer 500
        error_id = uuid.uuid4().hex[:12]
        log.exception(
            "internal error %s on %s %s", error_id, request.method, request.path
        )
        return json_response(
            error_body("internal", f"internal error (id {error_id})"), status=500
        )
