"""What-if: another version of a script run over the app's recorded history.

``POST /api/v1/admin/apps/{app}/what-if {script_id, source, from, to}`` runs
the invocations of the endpoint script ``script_id`` recorded between log
positions ``from`` and ``to`` (inclusive; by default from the start of the
log to the app's newest event) again with ``source``, in a dry run on the
app's host, and answers per invocation what the script did then and what
the new source does (domain.what_if). Nothing is written: the log, the projections and
the app's actor are as they were.

Access: SCRIPT_WRITE on the app — running a source of one's choice as the
app is what changing its script is (a viewer may not).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from picloud.domain.access import Capability
from picloud.domain.commands import WhatIf
from picloud.domain.what_if import WhatIfAnswer
from picloud.errors import InvalidInput
from picloud.http._admin_apps import app_or_404
from picloud.http._admin_scripts import Source, send
from picloud.http._api import endpoint, not_found
from picloud.http.state import SERVICES

__all__ = ["WhatIfBody"]

Position = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class WhatIfBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    script_id: str
    source: Source
    from_position: Position = msgspec.field(default=0, name="from")
    to_position: Position | None = msgspec.field(default=None, name="to")


@endpoint(
    "POST",
    "/api/v1/admin/apps/{app}/what-if",
    needs=Capability.SCRIPT_WRITE,
    summary="Run a script's invocations recorded between two positions again "
    "with another source, in a dry run: per invocation, then and now",
    answer=WhatIfAnswer,
)
async def what_if(request: web.Request, body: WhatIfBody) -> Any:
    app = await app_or_404(request)
    services = request.app[SERVICES]
    script = await services.store.script(body.script_id)
    if script is None or script.app_id != app.id:
        raise not_found("script", body.script_id)
    to = body.to_position
    if to is None:
        head = await services.log.stream_head(f"app-{app.id}")
        to = 0 if head is None else head.position
    if body.from_position > to:
        raise InvalidInput(f"from ({body.from_position}) is after to ({to})")
    command = WhatIf(
        script_id=script.id,
        source=body.source,
        from_position=body.from_position,
        to_position=to,
    )
    timeout = services.settings.what_if_timeout_ms / 1000
    return (await send(request, app.id, command, timeout_s=timeout)).result
