"""Declaring admin API endpoints: one table that routing, OpenAPI and tests read.

Every endpoint states its method, path, query parameters, body and answer
types and the :class:`~picloud.domain.access.Capability` it needs
(``needs=None`` only for public endpoints: health, the OpenAPI document,
login). The wrapper refuses hostile input first (NUL or invalid UTF-8 in the
path, query or headers: :mod:`picloud.http._input`), then checks access,
then reads the declared query parameters (:mod:`picloud.http._params`) and
decodes the JSON body strictly (unknown fields, wrong types, nesting deeper
than scripts can read: a 400 naming the place), calls the handler, and
encodes the answer.

Which app a request acts on, for the capability check:

- a path with an ``{app}`` segment acts on that app (its id or slug);
- an endpoint that names a thing of an app by its own id
  (``/api/v1/admin/scripts/{id}``) passes ``app_of=``, an :class:`AppOf`:
  the thing's noun and an async function of the request answering the id of
  the app the thing belongs to, or None when there is no such thing;
- any other endpoint acts outside apps (creating apps, users, one's account).

A caller who holds nothing on the app (or there is no such app or thing)
gets the 404 of a missing one, worded by :func:`not_found` as the handler
would; see :mod:`picloud.http._auth`.

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
from picloud.errors import InvalidInput, NotFound
from picloud.http._input import _field_message, check_request, decode_json, read_body
from picloud.http._params import Param, check_known, read_query
from picloud.http.state import SERVICES

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
    "not_found",
]

Handler = Callable[..., Awaitable[Any]]
Authorize = Callable[[web.Request, "Endpoint"], Awaitable[None]]
H = TypeVar("H", bound=Handler)
B = TypeVar("B")

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class AppOf:
    """How to find the app of a thing a path names by its own id."""

    noun: str
    """What the thing is called in its 404 (``no script '…'``)."""
    find: Callable[[web.Request], Awaitable[str | None]]
    """The id of the thing's app, or None when there is no such thing."""
    param: str = "id"
    """The path parameter holding the thing's id."""
    in_query: tuple[str, ...] = ()
    """Instead, the query parameters that may name the app; when none is
    given, the request acts outside any app (the instance's log, say)."""


def not_found(noun: str, ref: str) -> NotFound:
    """The 404 of a missing ``noun`` named ``ref``: one wording everywhere, so
    an invisible thing answers exactly as an absent one."""
    return NotFound(f"no {noun} {ref[:80]!r}")


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
    query: tuple[Param, ...] = ()
    """The query parameters it reads (:func:`picloud.http._params.query_of`)."""
    stream: bool = False
    """It answers server-sent events (text/event-stream) that go on."""
    strict_query: bool = False
    """Refuse a query parameter not in ``query`` (filters: a typo is a 400)."""
    text: bool = False
    """It answers plain text (``/metrics``), not JSON."""

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
    query: tuple[Param, ...] = (),
    stream: bool = False,
    strict_query: bool = False,
    text: bool = False,
) -> Callable[[H], H]:
    """Register ``handler(request[, body])`` for ``method path``.

    The body type is the annotation of the handler's second parameter, if any.
    ``app_of`` finds the app of a path without ``{app}`` (module docstring);
    ``query`` declares the query parameters the handler reads.
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
                query=query,
                stream=stream,
                strict_query=strict_query,
                text=text,
            )
        )
        return handler

    return register


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=_encoder.encode(value), status=status, content_type="application/json"
    )


async def decode_body(request: web.Request, body_type: Any) -> Any:
    """The request's JSON body as ``body_type``; InvalidInput names what is wrong."""
    raw = await read_body(request)
    depth = request.app[SERVICES].settings.script_max_value_depth
    return decode_json(raw, body_type, max_depth=depth)


def convert_body(values: dict[str, Any], body_type: type[B]) -> B:
    """``values`` (a form's fields) as ``body_type``, checked as strictly as a
    JSON body; InvalidInput names what is wrong."""
    try:
        return msgspec.convert(values, type=body_type)
    except msgspec.ValidationError as e:
        raise InvalidInput(_field_message(str(e))) from e


def _wrap(
    entry: Endpoint, authorize: Authorize | None
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        check_request(request)
        if authorize is not None:
            await authorize(request, entry)
        if entry.strict_query:
            check_known(request, entry.query)
        read_query(request, entry.query)
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
