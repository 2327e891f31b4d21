"""Declaring admin API endpoints: one table that routing, OpenAPI and tests read.

Every endpoint states its method, path, body and answer types and the
:class:`~picloud.domain.access.Capability` it needs (``needs=None`` only for public
endpoints: health, the OpenAPI document, login). The wrapper checks access
first, then decodes the JSON body strictly (unknown fields and wrong types are
a 400 naming the field), calls the handler, and encodes the answer.

Which app a request acts on, for the capability check:

- a path with an ``{app}`` segment acts on that app (its id or slug);
- an endpoint that names a thing of an app by its own id
  (``/api/v1/admin/scripts/{id}``) passes ``app_of=``: an async function of
  the request answering the id of the app the thing belongs to, or None when
  there is no such thing (only an instance admin then gets past the check,
  to the handler's 404; everyone else gets 403, so ids of other apps' things
  cannot be probed);
- any other endpoint acts outside apps (creating apps, users, one's account).

See :mod:`picloud.domain.access` for which capability an endpoint should declare.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from picloud.domain.access import Capability
from picloud.errors import InvalidInput, PayloadTooLarge

__all__ = [
    "ENDPOINTS",
    "AppOf",
    "Authorize",
    "Endpoint",
    "EndpointTable",
    "convert_body",
    "decode_body",
    "endpoint",
    "json_response",
]

Handler = Callable[..., Awaitable[Any]]
Authorize = Callable[[web.Request, "Endpoint"], Awaitable[None]]
AppOf = Callable[[web.Request], Awaitable[str | None]]
H = TypeVar("H", bound=Handler)
B = TypeVar("B")

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    needs: Capability | None
    """The capability required, or None for a public endpoint (login, health)."""
    body: type[Any] | None
    answer: type[Any] | None
    status: int
    tag: str
    app_of: AppOf | None = None
    """How to find the app a request acts on when the path has no ``{app}``."""

    @property
    def name(self) -> str:
        return self.handler.__name__

    @property
    def app_scoped(self) -> bool:
        """Whether requests act on one app (see the module docstring)."""
        return self.app_of is not None or "{app}" in self.path


class EndpointTable:
    """The registry behind :func:`endpoint`."""

    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def add(self, entry: Endpoint) -> None:
        for other in self.endpoints:
            if (other.method, other.path) == (entry.method, entry.path):
                raise ValueError(f"{entry.method} {entry.path} is declared twice")
        self.endpoints.append(entry)

    def find(self, method: str, path: str) -> Endpoint:
        """The endpoint declared for ``method path``; LookupError if none."""
        for e in self.endpoints:
            if (e.method, e.path) == (method, path):
                return e
        raise LookupError(f"{method} {path} is not declared")

    def of(self, handler: Handler) -> Endpoint:
        """The endpoint whose handler is ``handler``; LookupError if none."""
        for e in self.endpoints:
            if e.handler is handler:
                return e
        raise LookupError(f"{handler.__name__} is not a declared handler")

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
    needs: Capability | None,
    summary: str,
    answer: type[Any] | None = None,
    status: int = 200,
    tag: str = "admin",
    app_of: AppOf | None = None,
) -> Callable[[H], H]:
    """Register ``handler(request[, body])`` for ``method path``.

    The body type is the annotation of the handler's second parameter, if any.
    ``app_of`` finds the app of a path without ``{app}`` (module docstring).
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
                app_of=app_of,
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


def convert_body(values: dict[str, Any], body_type: type[B]) -> B:
    """``values`` (a form's fields) as ``body_type``, checked as strictly as a
    JSON body; InvalidInput names what is wrong."""
    try:
        return msgspec.convert(values, type=body_type)
    except msgspec.ValidationError as e:
        raise InvalidInput(_field_message(str(e))) from e


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
