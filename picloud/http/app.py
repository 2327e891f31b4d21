"""``make_app``: the aiohttp application of the front door."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

# Importing the handler modules registers their endpoints.
from picloud.http import (  # noqa: F401
    admin_apps,
    admin_data,
    admin_identity,
    admin_scripts,
    admin_triggers,
    auth_api,
    health,
)
from picloud.http.api import ENDPOINTS
from picloud.http.auth import install_auth
from picloud.http.errors import error_middleware
from picloud.http.ingress import host_routing_middleware, ingress_routes
from picloud.http.state import SERVICES, Services

__all__ = ["make_app"]


def make_app(services: Services) -> web.Application:
    middlewares: list[Middleware] = [error_middleware]
    if services.settings.domain:
        middlewares.append(host_routing_middleware(services.settings.domain))
    app = web.Application(
        middlewares=middlewares, client_max_size=services.settings.max_request_bytes
    )
    app[SERVICES] = services
    # Ingress first: aiohttp tries resources in order, and every app request
    # would otherwise be matched against each admin route's pattern first.
    app.add_routes(ingress_routes())
    app.add_routes(ENDPOINTS.routes(authorize=install_auth(app)))
    return app
