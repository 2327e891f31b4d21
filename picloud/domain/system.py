"""Pure decisions on the ``system`` stream's app commands, and the answers
the API gives once they are recorded (identity: :mod:`picloud.domain.identity`)."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec

from picloud.domain.identity import (
    IdentityCommand,
    decide_identity,
    identity_answer,
)
from picloud.domain.names import check_slug
from picloud.domain.records import (
    AppRecord,
    KeyRecord,
    MemberRecord,
    SecretRecord,
    UserRecord,
)
from picloud.domain.secrets import (
    DeleteSecret,
    SecretCommand,
    SetSecret,
    decide_secret,
    secret_answer,
)
from picloud.errors import Conflict, InvalidInput, NotFound
from picloud.events import (
    AppCreated,
    AppDeleted,
    AppUpdated,
    Event,
    MemberSet,
    RecordedEvent,
    utcnow,
)
from picloud.events.system_state import AppEntry, SystemState

__all__ = [
    "Answer",
    "CreateApp",
    "DeleteApp",
    "SystemCommand",
    "UpdateApp",
    "decide_system",
]

_MAX_NAME = 200

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=_MAX_NAME)]


class CreateApp(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    name: Name
    owner: str | None = None
    """The user id of the creator, who becomes the app's first owner."""


class UpdateApp(msgspec.Struct, frozen=True, kw_only=True):
    app: str
    slug: str | None = None
    name: Name | None = None


class DeleteApp(msgspec.Struct, frozen=True, kw_only=True):
    app: str


SystemCommand = CreateApp | UpdateApp | DeleteApp | SecretCommand | IdentityCommand
Answer = AppRecord | UserRecord | MemberRecord | KeyRecord | SecretRecord | None


def _app(state: SystemState, ref: str) -> AppEntry:
    app = state.app(ref)
    if app is None:
        raise NotFound(f"no app {ref[:80]!r}")
    return app


def decide_system(state: SystemState, command: SystemCommand) -> list[Event]:
    """The events that ``command`` causes in ``state``; raises RequestErrors."""
    now = utcnow()
    match command:
        case CreateApp(slug=slug, name=name, owner=owner):
            check_slug(slug)
            if slug in state.slugs:
                raise Conflict(f"an app with slug {slug!r} already exists")
            if owner is not None and owner not in state.users:
                raise NotFound(f"no user {owner[:80]!r}")
            app_id = str(uuid.uuid4())
            events: list[Event] = [
                AppCreated(at=now, app_id=app_id, slug=slug, name=name)
            ]
            if owner is not None:
                events.append(
                    MemberSet(at=now, app_id=app_id, user_id=owner, role="owner")
                )
            return events
        case UpdateApp(app=ref, slug=new_slug, name=new_name):
            app = _app(state, ref)
            slug = app.slug if new_slug is None else new_slug
            if slug != app.slug:
                check_slug(slug)
                if slug in state.slugs:
                    raise Conflict(f"an app with slug {slug!r} already exists")
            name = app.name if new_name is None else new_name
            return [AppUpdated(at=now, app_id=app.id, slug=slug, name=name)]
        case DeleteApp(app=ref):
            app = _app(state, ref)
            return [AppDeleted(at=now, app_id=app.id, slug=app.slug)]
        case SetSecret() | DeleteSecret():
            return decide_secret(state, command)
        case _:
            return decide_identity(state, command)
    raise InvalidInput(f"unknown command {type(command).__name__}")


def app_record(app: AppEntry) -> AppRecord:
    return AppRecord(
        id=app.id,
        slug=app.slug,
        name=app.name,
        created_at=app.created_at,
        updated_at=app.updated_at,
    )


def answer(
    state: SystemState, command: SystemCommand, recorded: list[RecordedEvent]
) -> Answer:
    """The API's answer to ``command``, which recorded ``recorded``: the thing now."""
    if isinstance(command, SetSecret | DeleteSecret):
        return secret_answer(state, command)
    if not isinstance(command, CreateApp | UpdateApp | DeleteApp):
        return identity_answer(state, command, [r.event for r in recorded])
    for r in reversed(recorded):
        event = r.event
        if isinstance(event, AppCreated | AppUpdated):
            app = state.apps.get(event.app_id)
            return None if app is None else app_record(app)
    return None
