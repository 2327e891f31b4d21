"""The admins' web dashboard, on the admin listener: ``/`` and ``/ui/…``.

Server-rendered pages (Jinja2 through aiohttp-jinja2) over the same store
reads and the same admin API code paths and capability checks as the JSON
API; a little plain JavaScript (``static/dashboard.js``) only improves
what already works without it. Templates and static files ship in the
package.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import aiohttp_jinja2
import jinja2
import msgspec
from aiohttp import web

# Importing the page modules declares their pages and actions.
from picloud.http.dashboard import (  # noqa: F401
    _app,
    _data,
    _executions,
    _letters,
    _members,
    _scripts,
    _settings,
)
from picloud.http.dashboard._events import CLOSING, close_tails
from picloud.http.dashboard._home import add_session_routes
from picloud.http.dashboard._security import STATIC_PREFIX, secure_headers
from picloud.http.dashboard._table import add_routes

__all__ = ["install_dashboard"]


def install_dashboard(app: web.Application) -> None:
    """Add the dashboard's pages, actions, static files and headers to ``app``."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("picloud.http.dashboard", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        default_helpers=False,
    )
    # aiohttp-jinja2 offers the aiohttp application as "app"; here "app" is
    # the PiCloud app a page shows.
    env.globals.pop("app", None)
    env.filters["when"] = _when
    env.filters["pretty"] = _pretty
    env.globals["static"] = lambda name: STATIC_PREFIX + name
    env.globals["field"] = _field
    add_session_routes(app)
    add_routes(app)
    static = resources.files("picloud.http.dashboard") / "static"
    app.router.add_static(STATIC_PREFIX.rstrip("/"), str(static), name="ui_static")
    app.on_response_prepare.append(secure_headers)
    app[CLOSING] = asyncio.Event()
    app.on_shutdown.append(close_tails)


def _field(form: Any, name: str, default: str = "") -> str:
    """What the refused form held in ``name`` (to show it again), or ``default``."""
    if not form or name not in form:
        return default
    return str(form.get(name, default))


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pretty(value: msgspec.Raw | bytes | None) -> str:
    """Raw JSON, indented for reading."""
    if value is None:
        return ""
    return msgspec.json.format(bytes(value), indent=2).decode()
