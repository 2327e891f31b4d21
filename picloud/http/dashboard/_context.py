"""What an app's pages know about the app and about what the viewer may do."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from picloud.domain.access import capabilities
from picloud.domain.delivery_policy import effective_retry
from picloud.domain.records import AppRecord
from picloud.http._api import Endpoint
from picloud.http._auth import principal_of
from picloud.http.dashboard._table import ACTIONS
from picloud.http.state import SERVICES

__all__ = ["app_context"]


async def app_context(request: web.Request, app: AppRecord) -> dict[str, Any]:
    """The app, its open dead letters, ``may(action)``: whether the viewer
    holds what that action's API endpoint needs (so a button is shown only
    to whom its POST would be allowed), and ``retry_in_force(policy)``: a
    route's or trigger's retry policy with the deployment's defaults."""
    services = request.app[SERVICES]
    store = services.store
    principal = principal_of(request)
    role = None
    if not principal.is_admin:
        role = await store.role_in(app.id, principal.user_id)
    here = capabilities(principal, app_id=app.id, role=role)
    outside = capabilities(principal, app_id=None)

    def may(name: str) -> bool:
        declared = ACTIONS[name]
        scoped = not isinstance(declared.api, Endpoint) or declared.api.app_scoped
        return declared.needs in (here if scoped else outside)

    counts = await store.open_dead_letter_counts()
    return {
        "app": app,
        "can": {c.value for c in here},
        "may": may,
        "open_letters": counts.get(app.id, 0),
        "retry_in_force": lambda policy: effective_retry(policy, services.settings),
    }
