"""Admin API: triggers and dead letters of an app (SPEC.md §4, §9)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from picloud.domain.access import Capability
from picloud.domain.commands import (
    AddTrigger,
    RemoveTrigger,
    ReplayDeadLetter,
    ResolveDeadLetter,
)
from picloud.domain.records import DeadLetterRecord, TriggerRecord
from picloud.errors import InvalidInput, NotFound
from picloud.events.trigger_kinds import TRIGGER_KINDS, TriggerKind
from picloud.http._admin_apps import app_or_404
from picloud.http._admin_scripts import send
from picloud.http._api import ENDPOINTS, AppOf, Endpoint, endpoint, not_found
from picloud.http._fields import CollectionName, RetryBody
from picloud.http._params import (
    encode_position,
    flag,
    limit,
    position_cursor,
    query_of,
)
from picloud.http.state import SERVICES

__all__ = [
    "TRIGGER_APP",
    "CreateScheduleBody",
    "CreateTriggerBody",
    "DeadLetterList",
    "TriggerList",
    "replay_letter",
    "trigger_endpoint",
]

_PAGE = 50
_MAX_PAGE = 500


class CreateTriggerBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    script_id: str
    ops: list[str] = []
    collection: CollectionName | None = None
    capabilities: list[str] | None = None
    retry: RetryBody | None = None
    """How failed runs are tried again; absent: the deployment's defaults."""


class CreateScheduleBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    script_id: str
    cron: Annotated[str, msgspec.Meta(max_length=200)]
    """5 fields (minute hour day-of-month month day-of-week), or 6 with
    seconds last; croniter's syntax (``*/15 9-17 * * mon-fri``)."""
    timezone: Annotated[str, msgspec.Meta(max_length=64)] = "UTC"
    """The IANA zone the times are read in (``Europe/Paris``)."""
    capabilities: list[str] | None = None
    retry: RetryBody | None = None


class TriggerList(msgspec.Struct, frozen=True):
    items: list[TriggerRecord]


class DeadLetterList(msgspec.Struct, frozen=True):
    items: list[DeadLetterRecord]
    cursor: str | None


async def _app_of_trigger(request: web.Request) -> str | None:
    trigger = await request.app[SERVICES].store.trigger(request.match_info["id"])
    return None if trigger is None else trigger.app_id


TRIGGER_APP = AppOf("trigger", _app_of_trigger)


async def _add_trigger(
    request: web.Request, script_id: str, command: AddTrigger
) -> Any:
    app = await app_or_404(request)
    script = await request.app[SERVICES].store.script(script_id)
    if script is None:
        raise not_found("script", script_id)
    if script.app_id != app.id:
        raise InvalidInput(
            f"script {script_id[:80]!r} belongs to another app; a trigger "
            "can only run a script of its own app"
        )
    return (await send(request, app.id, command)).result


def _trigger_endpoint(kind: TriggerKind) -> None:
    async def create_trigger(request: web.Request, body: CreateTriggerBody) -> Any:
        command = AddTrigger(
            kind=kind.name,
            script_id=body.script_id,
            ops=body.ops,
            collection=body.collection,
            capabilities=body.capabilities,
            retry=None if body.retry is None else body.retry.policy(),
        )
        return await _add_trigger(request, body.script_id, command)

    async def create_schedule(request: web.Request, body: CreateScheduleBody) -> Any:
        command = AddTrigger(
            kind=kind.name,
            script_id=body.script_id,
            capabilities=body.capabilities,
            retry=None if body.retry is None else body.retry.policy(),
            cron=body.cron,
            timezone=body.timezone,
        )
        return await _add_trigger(request, body.script_id, command)

    handler = create_schedule if kind.takes_schedule else create_trigger
    handler.__name__ = f"create_{kind.name}_trigger"
    endpoint(
        "POST",
        f"/api/v1/admin/apps/{{app}}/triggers/{kind.name}",
        needs=Capability.TRIGGERS_MANAGE,
        answer=TriggerRecord,
        status=201,
        summary=kind.summary.split(";")[0],
    )(handler)


for _kind in TRIGGER_KINDS.values():
    _trigger_endpoint(_kind)


def trigger_endpoint(kind: str) -> Endpoint:
    """The endpoint that creates a trigger of ``kind``; NotFound if none."""
    if kind not in TRIGGER_KINDS:
        raise NotFound(f"no trigger kind {kind[:40]!r}")
    return ENDPOINTS.find("POST", f"/api/v1/admin/apps/{{app}}/triggers/{kind}")


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/triggers",
    needs=Capability.TRIGGERS_READ,
    summary="List an app's triggers",
    answer=TriggerList,
)
async def list_app_triggers(request: web.Request) -> TriggerList:
    app = await app_or_404(request)
    return TriggerList(items=await request.app[SERVICES].store.triggers(app.id))


@endpoint(
    "DELETE",
    "/api/v1/admin/triggers/{id}",
    needs=Capability.TRIGGERS_MANAGE,
    summary="Remove a trigger",
    status=204,
    app_of=TRIGGER_APP,
)
async def delete_trigger(request: web.Request) -> None:
    trigger = await request.app[SERVICES].store.trigger(request.match_info["id"])
    if trigger is None:
        raise not_found("trigger", request.match_info["id"])
    await send(request, trigger.app_id, RemoveTrigger(trigger_id=trigger.id))


# -- dead letters -------------------------------------------------------------------


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/dead-letters",
    needs=Capability.DEAD_LETTERS_READ,
    summary="Dead letters, newest first (?resolved=true|false&cursor=&limit=)",
    answer=DeadLetterList,
    query=(
        flag(
            "resolved", "only resolved or unresolved ones (absent: both)", default=None
        ),
        position_cursor(),
        limit(default=_PAGE, maximum=_MAX_PAGE),
    ),
)
async def list_app_dead_letters(request: web.Request) -> DeadLetterList:
    app = await app_or_404(request)
    query = query_of(request)
    items, after = await request.app[SERVICES].store.dead_letters(
        app.id, resolved=query["resolved"], before=query["cursor"], limit=query["limit"]
    )
    return DeadLetterList(items=items, cursor=encode_position(after))


async def _letter_or_404(request: web.Request, app_id: str) -> DeadLetterRecord:
    letter_id = request.match_info["id"]
    letter = await request.app[SERVICES].store.dead_letter(app_id, letter_id)
    if letter is None:
        raise NotFound(f"no dead letter {letter_id[:80]!r} in this app")
    return letter


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/dead-letters/{id}",
    needs=Capability.DEAD_LETTERS_READ,
    summary="One dead letter with its event and last error",
    answer=DeadLetterRecord,
)
async def get_app_dead_letter(request: web.Request) -> DeadLetterRecord:
    app = await app_or_404(request)
    return await _letter_or_404(request, app.id)


@endpoint(
    "POST",
    "/api/v1/admin/apps/{app}/dead-letters/{id}/replay",
    needs=Capability.DEAD_LETTERS_MANAGE,
    answer=DeadLetterRecord,
    summary="Deliver the dead letter's event again, with fresh attempts",
)
async def replay_dead_letter(request: web.Request) -> DeadLetterRecord:
    app = await app_or_404(request)
    letter = await _letter_or_404(request, app.id)
    return await replay_letter(request, app.id, letter.id)


async def replay_letter(
    request: web.Request, app_id: str, letter_id: str
) -> DeadLetterRecord:
    """Replay one dead letter of the app (409 if it is no longer open)."""
    await send(request, app_id, ReplayDeadLetter(dead_letter_id=letter_id))
    letter = await request.app[SERVICES].store.dead_letter(app_id, letter_id)
    if letter is None:  # expired by the retention sweep in the meantime
        raise NotFound(f"no dead letter {letter_id[:80]!r} in this app")
    return letter


@endpoint(
    "POST",
    "/api/v1/admin/apps/{app}/dead-letters/{id}/resolve",
    needs=Capability.DEAD_LETTERS_MANAGE,
    answer=DeadLetterRecord,
    summary="Mark the dead letter resolved (recording who and when)",
)
async def resolve_dead_letter(request: web.Request) -> DeadLetterRecord:
    app = await app_or_404(request)
    letter = await _letter_or_404(request, app.id)
    await send(request, app.id, ResolveDeadLetter(dead_letter_id=letter.id))
    return await _letter_or_404(request, app.id)
