"""``make_app``: the aiohttp application of the front door."""

from __future__ import annotations

from aiohttp import web

# Importing the handler modules registers their endpoints.
from picloud.http import (  # noqa: F401
    _admin_apps,
    _admin_data,
    _admin_deploy,
    _admin_events,
    _admin_executions,
    _admin_history,
    _admin_hosts,
    _admin_identity,
    _admin_scripts,
    _admin_secrets,
    _admin_settings,
    _admin_triggers,
    _admin_versions,
    _admin_what_if,
    _auth_api,
    _health,
)
from picloud.http._api import ENDPOINTS
from picloud.http._auth import install_auth
from picloud.http._errors import error_middleware
from picloud.http._observe import echo_request_id, observe_middleware
from picloud.http._protocol import answer_protocol_errors_as_json
from picloud.http._sse import install_tails
from picloud.http.dashboard import install_dashboard
from picloud.http.state import SERVICES, Services

__all__ = ["answer_protocol_errors_as_json", "make_app"]


def make_app(services: Services) -> web.Application:
    """The admin API, auth, health and the dashboard; app requests never reach
    it (see :func:`picloud.http.ingress.apps_handler`, on the apps listener)."""
    app = web.Application(
        middlewares=[observe_middleware, error_middleware],
        client_max_size=services.settings.max_request_bytes,
    )
    app.on_response_prepare.append(echo_request_id)
    app[SERVICES] = services
    install_tails(app)
    app.add_routes(ENDPOINTS.routes(authorize=install_auth(app)))
    install_dashboard(app)
    return app
