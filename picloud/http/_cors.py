"""CORS of an app's routes, answered by the front door from the app's policy
(``PUT …/apps/{app}/settings/cors``): scripts never see a preflight, and a
route's answer gets the ``Access-Control-*`` headers its origin is due."""

from __future__ import annotations

from aiohttp import web

from picloud.events.app import CorsPolicy
from picloud.http._api import json_response
from picloud.http._errors import error_body

__all__ = ["allow_origin", "preflight"]

# What a browser sends without asking (the CORS-safelisted request headers).
_SIMPLE_HEADERS = frozenset(
    {"accept", "accept-language", "content-language", "content-type", "range"}
)


def _origin_allowed(cors: CorsPolicy, origin: str) -> bool:
    return "*" in cors.origins or origin.lower() in cors.origins


def preflight(cors: CorsPolicy | None, request: web.BaseRequest) -> web.Response | None:
    """The answer to a preflight (``OPTIONS`` with ``Origin`` and
    ``Access-Control-Request-Method``) when the app has a policy, else None."""
    origin = request.headers.get("Origin")
    wanted = request.headers.get("Access-Control-Request-Method")
    if cors is None or request.method != "OPTIONS" or not origin or not wanted:
        return None
    asked = {
        h.strip().lower()
        for h in request.headers.get("Access-Control-Request-Headers", "").split(",")
        if h.strip()
    }
    refused = _refusal(cors, origin, wanted.upper(), asked - _SIMPLE_HEADERS)
    if refused:
        return json_response(error_body("cors_refused", refused), 403)
    response = web.Response(status=204)
    headers = response.headers
    headers["Access-Control-Allow-Origin"] = _allowed_value(cors, origin)
    headers["Access-Control-Allow-Methods"] = ", ".join(cors.methods) or wanted.upper()
    if asked:
        headers["Access-Control-Allow-Headers"] = ", ".join(sorted(asked))
    headers["Access-Control-Max-Age"] = str(cors.max_age_s)
    headers["Vary"] = "Origin"
    return response


def _refusal(cors: CorsPolicy, origin: str, method: str, headers: set[str]) -> str:
    if not _origin_allowed(cors, origin):
        return f"origin {origin[:100]!r} may not call this app"
    if cors.methods and method not in cors.methods:
        return f"{method[:20]} is not among the app's CORS methods"
    extra = sorted(headers - set(cors.headers))
    if extra:
        return f"header {extra[0][:40]!r} is not among the app's CORS headers"
    return ""


def _allowed_value(cors: CorsPolicy, origin: str) -> str:
    return "*" if cors.origins == ["*"] else origin


def allow_origin(
    cors: CorsPolicy | None,
    request: web.BaseRequest,
    response: web.StreamResponse,
    *expose: str,
) -> None:
    """Add the ``Access-Control-*`` headers an allowed origin's answer needs
    (``expose``: the front door's own headers a page's script may read)."""
    origin = request.headers.get("Origin")
    if cors is None or not origin or not _origin_allowed(cors, origin):
        return
    response.headers["Access-Control-Allow-Origin"] = _allowed_value(cors, origin)
    response.headers["Access-Control-Expose-Headers"] = ", ".join(expose)
    response.headers.add("Vary", "Origin")
