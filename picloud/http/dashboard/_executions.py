"""The execution log: filters by status, script, trigger label prefix and
start time; one run by id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from picloud.domain.access import Capability
from picloud.errors import InvalidInput, NotFound
from picloud.events.trigger_kinds import TRIGGER_KINDS
from picloud.http._admin_apps import app_or_404
from picloud.http._admin_executions import settle
from picloud.http.dashboard._app import script_names
from picloud.http.dashboard._context import app_context
from picloud.http.dashboard._table import page
from picloud.http.state import SERVICES
from picloud.store import ExecutionFilter

__all__: list[str] = []

_PAGE = 50
STATUSES = ("any", "ok", "error")
_TRIGGER_MAX = 300
# Suggested prefixes of a run's trigger label (the box takes any).
TRIGGER_PREFIXES = (
    "route:",
    "async:",
    "throttled:",
    "trigger:",
    *(f"trigger:{kind}:" for kind in TRIGGER_KINDS),
)


def _time(value: str, name: str) -> datetime | None:
    """A datetime-local field (``2025-01-31T14:05``), read as UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{name} must be a date and time (YYYY-MM-DDTHH:MM)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Filter:
    def __init__(self, query: Any) -> None:
        self.status = str(query.get("status") or "any")
        if self.status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
        self.script = str(query.get("script") or "")
        self.trigger = str(query.get("trigger") or "").strip()
        if len(self.trigger) > _TRIGGER_MAX:  # as the API's ?trigger= allows
            raise InvalidInput(f"trigger is at most {_TRIGGER_MAX} characters")
        self.since_text = str(query.get("since") or "")
        self.until_text = str(query.get("until") or "")
        self.since = _time(self.since_text, "since")
        self.until = _time(self.until_text, "until")
        cursor = str(query.get("cursor") or "")
        if cursor and not cursor.isdigit():
            raise InvalidInput("cursor must be a non-negative integer")
        self.cursor = int(cursor) if cursor else None

    def link(self, cursor: int) -> dict[str, str]:
        """The query string of the next page under the same filter."""
        return {
            "status": self.status,
            "script": self.script,
            "trigger": self.trigger,
            "since": self.since_text,
            "until": self.until_text,
            "cursor": str(cursor),
        }


@page("/ui/apps/{app}/executions", name="ui_executions", needs=Capability.APP_READ)
async def executions_page(request: web.Request) -> tuple[str, dict[str, Any]]:
    app = await app_or_404(request)
    wanted = request.query.get("id", "").strip()
    if wanted:  # the "find by id" box
        where = quote(wanted[:100], safe="")
        raise web.HTTPSeeOther(f"/ui/apps/{app.slug}/executions/{where}")
    shown = Filter(request.query)
    chosen = ExecutionFilter(
        status=None if shown.status == "any" else shown.status,
        script_id=shown.script or None,
        trigger=shown.trigger or None,
        since=shown.since,
        until=shown.until,
    )
    await settle(request, app.id)  # every run answered so far is listed
    runs, after = await request.app[SERVICES].store.executions(
        app.id, where=chosen, before=shown.cursor, limit=_PAGE
    )
    return "executions.html", {
        **await app_context(request, app),
        "runs": runs,
        "next": None if after is None else shown.link(after),
        "filter": shown,
        "statuses": STATUSES,
        "trigger_prefixes": TRIGGER_PREFIXES,
        "names": await script_names(request, app.id),
    }


@page("/ui/apps/{app}/executions/{id}", name="ui_execution", needs=Capability.APP_READ)
async def execution_page(request: web.Request) -> tuple[str, dict[str, Any]]:
    app = await app_or_404(request)
    execution_id = request.match_info["id"]
    await settle(request, app.id)
    found = await request.app[SERVICES].store.execution(app.id, execution_id)
    if found is None:
        raise NotFound(f"no execution {execution_id[:80]!r} in this app")
    return "execution.html", {
        **await app_context(request, app),
        "found": found,
        "run": found.execution,
        "names": await script_names(request, app.id),
    }
