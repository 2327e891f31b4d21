"""Admin API: a script's saved versions and rollback to one.

Every save is a ``script.saved`` event, so every version is in the log; a
rollback saves an old version's source again, as the next version (the
history only grows).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web

from picloud.domain.access import Capability
from picloud.domain.commands import SaveScript
from picloud.domain.records import ScriptRecord, ScriptVersion
from picloud.http._admin_scripts import SCRIPT_APP, script_or_404, send
from picloud.http._api import endpoint, not_found
from picloud.http.state import SERVICES

__all__ = ["RollbackBody", "VersionList", "VersionSummary"]

Version = Annotated[int, msgspec.Meta(ge=1)]


class VersionSummary(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    recorded_at: datetime
    actor: str | None
    bytes: int


class VersionList(msgspec.Struct, frozen=True):
    items: list[VersionSummary]


class RollbackBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: Version


async def _versions(request: web.Request) -> tuple[ScriptRecord, list[ScriptVersion]]:
    script = await script_or_404(request)
    store = request.app[SERVICES].store
    return script, await store.script_versions(script.app_id, script.id)


def _version(versions: list[ScriptVersion], number: int) -> ScriptVersion:
    for saved in versions:
        if saved.version == number:
            return saved
    raise not_found("version", str(number))


@endpoint(
    "GET",
    "/api/v1/admin/scripts/{id}/versions",
    needs=Capability.SCRIPT_READ,
    summary="Every saved version of a script, oldest first",
    answer=VersionList,
    app_of=SCRIPT_APP,
)
async def list_versions(request: web.Request) -> VersionList:
    _, versions = await _versions(request)
    return VersionList(
        items=[
            VersionSummary(
                version=v.version,
                recorded_at=v.recorded_at,
                actor=v.actor,
                bytes=len(v.source.encode()),
            )
            for v in versions
        ]
    )


@endpoint(
    "GET",
    "/api/v1/admin/scripts/{id}/versions/{version}",
    needs=Capability.SCRIPT_READ,
    summary="One saved version of a script, with its source",
    answer=ScriptVersion,
    app_of=SCRIPT_APP,
)
async def get_version(request: web.Request) -> ScriptVersion:
    _, versions = await _versions(request)
    raw = request.match_info["version"]
    if not raw.isdigit():
        raise not_found("version", raw)
    return _version(versions, int(raw))


@endpoint(
    "POST",
    "/api/v1/admin/scripts/{id}/rollback",
    needs=Capability.SCRIPT_WRITE,
    summary="Save an earlier version's source again, as the next version",
    answer=ScriptRecord,
    app_of=SCRIPT_APP,
)
async def rollback_script(request: web.Request, body: RollbackBody) -> Any:
    script, versions = await _versions(request)
    old = _version(versions, body.version)
    command = SaveScript(script_id=script.id, source=old.source)
    return (await send(request, script.app_id, command)).result
