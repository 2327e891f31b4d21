"""Malformed HTTP answered in the JSON error shape, without echoing it.

aiohttp answers a request it cannot parse (a request line or header field
too long, too many headers, a bad character in the URL, an unknown method,
a malformed header) before any handler runs, from
``RequestHandler.handle_error``, in plain text quoting the offending bytes.
:func:`answer_protocol_errors_as_json` makes a server's connections answer
them like every other error: ``{"error": {"code", "message"}}`` with a
fitting status (400, 431, 501; 500 and 504 for what escapes a handler),
naming the problem but never repeating the request. aiohttp still logs the
error and closes the connection, as before.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
)

from picloud.http._api import json_response
from picloud.http._errors import error_body
from picloud.http._observe import REQUEST_ID_HEADER, new_request_id

__all__ = ["answer_protocol_errors_as_json"]


def answer_protocol_errors_as_json(server: web.Server) -> None:
    """Make the connections ``server`` accepts from now on answer malformed
    requests (and a handler's escaped failure) with the JSON error body.

    ``server`` is the protocol factory of the runner's sites: its
    ``__call__`` makes each connection's ``RequestHandler``. aiohttp takes no
    handler class as an argument, so ``server`` becomes a subclass that
    makes the same handler, of a class overriding ``handle_error`` alone.
    """
    server.__class__ = _JsonErrorServer


class _JsonErrorServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        # As web.Server.__call__ does, with the handler class that answers JSON.
        return _JsonErrors(self, loop=self._loop, **self._kwargs)


class _JsonErrors(web.RequestHandler):
    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp's own: it logs, and refuses once an answer has begun.
        super().handle_error(request, status, exc, message)
        status, code, text = _describe(status, exc)
        response = json_response(error_body(code, text), status)
        # Never the caller's id: its headers are what could not be read.
        response.headers[REQUEST_ID_HEADER] = new_request_id()
        response.force_close()
        return response


def _describe(status: int, exc: BaseException | None) -> tuple[int, str, str]:
    """Status, code and message for a protocol error; never the request's bytes."""
    if status == 500:  # raised past the handler (the middleware should catch it)
        return 500, "internal", "internal error"
    if status == 504:  # aiohttp's own: a handler raised TimeoutError
        return 504, "timeout", "the request took too long to answer"
    match exc:
        case LineTooLong():
            limit = exc.args[1] if len(exc.args) > 1 else "the allowed"
            message = f"the request line or a header field is longer than {limit} bytes"
            return 431, "request_header_too_large", message
        case BadHttpMessage() if exc.message.startswith("Too many headers"):
            return 431, "request_header_too_large", "too many header fields"
        case BadHttpMethod() if exc.message.startswith("Received HTTPS"):
            return 400, "bad_request", "this port speaks plain HTTP, not HTTPS"
        case BadHttpMethod():
            return 501, "not_implemented", "unknown HTTP method"
        case InvalidURLError():
            return 400, "bad_request", "the URL holds characters HTTP does not allow"
        case BadStatusLine():
            return 400, "bad_request", "malformed request line"
        case InvalidHeader():
            return 400, "bad_request", "malformed header field"
    return 400, "bad_request", "malformed HTTP request"
