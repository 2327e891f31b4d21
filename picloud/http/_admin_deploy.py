"""Admin API: deploy a folder — an app's scripts, routes, triggers and CORS
policy made what a manifest says, as one change set (domain.deploy): every
change in one batch of events, all or nothing. ``picloud deploy`` and
``picloud pull`` are its clients."""

from __future__ import annotations

import msgspec
from aiohttp import web

from picloud.domain.access import Capability
from picloud.domain.commands import Deploy, DesiredApp
from picloud.domain.deploy import Change
from picloud.errors import Forbidden
from picloud.http._admin_apps import app_or_404
from picloud.http._admin_scripts import routing_sees, send
from picloud.http._api import endpoint
from picloud.http._auth import holds

__all__ = ["DeployAnswer", "DeployBody"]


class DeployBody(DesiredApp, frozen=True, kw_only=True):
    dry_run: bool = False
    """Only say what would change."""


class DeployAnswer(msgspec.Struct, frozen=True, kw_only=True):
    changes: list[Change]
    """In the order they are applied."""
    applied: bool
    """False for a dry run (and for a deploy that changes nothing)."""


@endpoint(
    "POST",
    "/api/v1/admin/apps/{app}/deploy",
    needs=Capability.SCRIPT_WRITE,
    summary="Make the app's scripts, routes, triggers and CORS policy those "
    "given, as one atomic change set (dry_run: only list the changes)",
    answer=DeployAnswer,
)
async def deploy_app(request: web.Request, body: DeployBody) -> DeployAnswer:
    app = await app_or_404(request)
    desired = DesiredApp(
        scripts=body.scripts,
        routes=body.routes,
        triggers=body.triggers,
        cors=body.cors,
        prune=body.prune,
    )
    # Changing triggers or CORS needs more than script:write. A caller who
    # lacks it may still deploy a folder that leaves them as they are (a
    # pulled folder names the app's CORS policy): a dry run says which.
    lacking = [c for c in _BEYOND if not holds(request, c)]
    if lacking and not body.dry_run:
        await _check(request, app.id, desired, lacking)
    done = await send(request, app.id, Deploy(desired=desired, dry_run=body.dry_run))
    changes = msgspec.convert(done.result or [], list[Change])
    applied = bool(changes) and not body.dry_run
    if applied:
        await routing_sees(request, done)
    return DeployAnswer(changes=changes, applied=applied)


# What a change of each kind needs beyond the endpoint's script:write.
_NEEDS = {"trigger": Capability.TRIGGERS_MANAGE, "cors": Capability.APP_WRITE}
_BEYOND = tuple(_NEEDS.values())


async def _check(
    request: web.Request, app_id: str, desired: DesiredApp, lacking: list[Capability]
) -> None:
    """Forbidden if the change set would change what the caller may not."""
    done = await send(request, app_id, Deploy(desired=desired, dry_run=True))
    for change in msgspec.convert(done.result or [], list[Change]):
        needed = _NEEDS.get(change.what)
        if needed is not None and needed in lacking:
            raise Forbidden(
                f"not allowed: changing the {change.what} {change.name!r}"
                f" needs {needed.value}"
            )
