"""The aiohttp front door: the ingress of app requests, the admin API, auth,
health and the OpenAPI document. Scripts never run here; no SQL here."""

from __future__ import annotations

from picloud.http.app import make_app
from picloud.http.ingress import EXECUTION_HEADER, apps_handler
from picloud.http.routing import Match, Routing
from picloud.http.state import SERVICES, BackgroundTasks, Services

__all__ = [
    "EXECUTION_HEADER",
    "SERVICES",
    "BackgroundTasks",
    "Match",
    "Routing",
    "Services",
    "apps_handler",
    "make_app",
]
