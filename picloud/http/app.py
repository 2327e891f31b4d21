"""``make_app``: the aiohttp application of the front door."""

from __future__ import annotations

from aiohttp import web

# Importing the handler modules registers their endpoints.
from picloud.http import admin_apps, health  # noqa: F401
from picloud.http.api import ENDPOINTS
from picloud.http.errors import error_middleware
from picloud.http.state import SERVICES, Services

__all__ = ["make_app"]


def make_app(services: Services) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=services.settings.max_request_bytes,
    )
    app[SERVICES] = services
    app.add_routes(ENDPOINTS.routes(authorize=None))
    return app
