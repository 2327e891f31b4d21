"""Declaring admin API endpoints: one table that routing, OpenAPI and tests read.

Every endpoint states its method, path, body and answer types and the
capability it needs. The wrapper decodes the JSON body strictly (unknown
fields and wrong types are a 400 naming the field), checks access, calls the
handler, and encodes the answer.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from picloud.errors import InvalidInput, PayloadTooLarge

__all__ = [
    "ENDPOINTS",
    "Authorize",
    "Endpoint",
    "EndpointTable",
    "decode_body",
    "endpoint",
    "json_response",
]

Handler = Callable[..., Awaitable[Any]]
Authorize = Callable[[web.Request, "Endpoint"], Awaitable[None]]
H = TypeVar("H", bound=Handler)

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    needs: str | None
    """The capability required, or None for a public endpoint (login, health)."""
    body: type[Any] | None
    answer: type[Any] | None
    status: int
    tag: str

    @property
    def name(self) -> str:
        return self.handler.__name__


class EndpointTable:
    """The registry behind :func:`endpoint`."""

    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def add(self, entry: Endpoint) -> None:
        for other in self.endpoints:
            if (other.method, other.path) == (entry.method, entry.path):
                raise ValueError(f"{entry.method} {entry.path} is declared twice")
        self.endpoints.append(entry)

    def routes(self, authorize: Authorize | None) -> list[web.RouteDef]:
        """aiohttp routes; ``authorize`` runs before every handler."""
        return [
            web.route(e.method, e.path, _wrap(e, authorize), name=e.name)
            for e in self.endpoints
        ]


ENDPOINTS = EndpointTable()


def endpoint(  # noqa: PLR0913  # a declaration: every argument is a named fact
    method: str,
    path: str,
    *,
    needs: str | None,
    summary: str,
    answer: type[Any] | None = None,
    status: int = 200,
    tag: str = "admin",
) -> Callable[[H], H]:
    """Register ``handler(request[, body])`` for ``method path``.

    The body type is the annotation of the handler's second parameter, if any.
    """

    def register(handler: H) -> H:
        params = list(inspect.signature(handler, eval_str=True).parameters.values())
        body = params[1].annotation if len(params) > 1 else None
        ENDPOINTS.add(
            Endpoint(
                method=method,
                path=path,
                handler=handler,
                summary=summary,
                needs=needs,
                body=body,
                answer=answer,
                status=status,
                tag=tag,
            )
        )
        return handler

    return register


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=_encoder.encode(value), status=status, content_type="application/json"
    )


async def decode_body(request: web.Request, body_type: type[Any]) -> Any:
    """The request's JSON body as ``body_type``; InvalidInput names what is wrong."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as e:
        limit = request.app._client_max_size  # aiohttp keeps the limit private
        raise PayloadTooLarge(f"request body larger than {limit} bytes") from e
    if not raw:
        raise InvalidInput("a JSON body is required")
    try:
        return msgspec.json.decode(raw, type=body_type, strict=True)
    except msgspec.ValidationError as e:
        raise InvalidInput(_field_message(str(e))) from e
    except msgspec.DecodeError as e:
        raise InvalidInput(f"malformed JSON: {e}") from e


def _field_message(message: str) -> str:
    # msgspec says "Expected `str`, got `int` - at `$.name`"; name the field first.
    text, sep, where = message.rpartition(" - at `$.")
    if not sep:
        return message
    return f"{where.rstrip('`')}: {text}"


def _wrap(
    entry: Endpoint, authorize: Authorize | None
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        if authorize is not None:
            await authorize(request, entry)
        if entry.body is None:
            result = await entry.handler(request)
        else:
            result = await entry.handler(
                request, await decode_body(request, entry.body)
            )
        if isinstance(result, web.StreamResponse):
            return result
        if result is None:
            return web.Response(status=204)
        return json_response(result, entry.status)

    handle.__name__ = entry.name
    return handle
