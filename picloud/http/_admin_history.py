"""An app's past: its KV entries and documents as of a position of the log.

``GET …/apps/{app}/state?as_of=POSITION`` folds the app's stream up to that
position (events.data_state: the projections' rules, stated again) and
answers every KV entry and document the app held then; without ``as_of``,
as of its newest event. An app's stream has one writer, so its events up to
a position it has reached are all committed: the answer never changes.
Values are the app's data as the KV and docs APIs show them (not redacted).
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from picloud.domain.access import Capability
from picloud.errors import InvalidInput
from picloud.events.data_state import DataState
from picloud.http._admin_apps import app_or_404
from picloud.http._api import endpoint
from picloud.http.state import SERVICES

__all__: list[str] = []

_BATCH = 2_000


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/state",
    needs=Capability.EVENTS_READ,
    summary="The app's KV entries and documents as of a position (?as_of=)",
)
async def app_state(request: web.Request) -> dict[str, Any]:
    app = await app_or_404(request)
    raw = request.query.get("as_of")
    if raw is not None and not raw.isdigit():
        raise InvalidInput("as_of must be a position (a non-negative integer)")
    as_of = None if raw is None else int(raw)
    log = request.app[SERVICES].log
    stream = f"app-{app.id}"
    state, version, position = DataState(), 0, 0
    while batch := await log.read_stream(stream, version, _BATCH):
        for recorded in batch:
            if as_of is not None and recorded.position > as_of:
                break
            state.apply(recorded.event)
            version, position = recorded.version, recorded.position
        else:
            continue
        break
    return {
        "app_id": app.id,
        "as_of": position if as_of is None else as_of,
        "version": version,
        "kv": [
            {"collection": c, "key": k, "value": msgspec.Raw(v)}
            for (c, k), v in sorted(state.kv.items())
        ],
        "docs": [
            {
                "collection": c,
                "id": i,
                "data": msgspec.Raw(d.data),
                "created_at": d.created_at,
                "updated_at": d.updated_at,
            }
            for (c, i), d in sorted(state.docs.items())
        ],
    }
