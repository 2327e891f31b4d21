"""The ControlPlane: the one writer of the ``system`` stream (apps and identity).

Plain Python, testable without Ray; :mod:`picloud.actors.control_actor` hosts it.

Guarantees:
- Commands run one at a time, in arrival order.
- Before deciding, the plane catches up on the stream (one indexed read that
  finds nothing in the common case), so commands written meanwhile by another
  process — the CLI's ``admin`` commands — are part of the decision.
- Each accepted command is appended with the expected stream version and its
  projection rows in the same transaction; if another process wrote the
  stream between the catch-up and the append, the plane reloads and decides
  again.
- A command that changes nothing (revoking a revoked key) appends nothing.
- A command with an idempotency key already seen answers the first result
  and appends nothing.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import OrderedDict
from typing import Annotated

import msgspec

from picloud.actors.identity import (
    IdentityCommand,
    decide_identity,
    identity_answer,
)
from picloud.errors import Conflict, InvalidInput, NotFound, VersionConflict
from picloud.events import (
    AppCreated,
    AppDeleted,
    AppUpdated,
    Event,
    EventMeta,
    MemberSet,
    RecordedEvent,
    utcnow,
)
from picloud.events.system_state import AppInfo, SystemState, evolve_system
from picloud.store import EventLog
from picloud.store.apps import AppRecord
from picloud.store.identity import KeyRecord, MemberRecord, UserRecord
from picloud.store.projections import project_system

__all__ = [
    "SYSTEM_STREAM",
    "Answer",
    "ControlPlane",
    "CreateApp",
    "DeleteApp",
    "SystemCommand",
    "UpdateApp",
    "decide_system",
]

SYSTEM_STREAM = "system"
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_RESERVED_SLUGS = frozenset({"api", "admin", "www", "static", "dashboard", "healthz"})
_MAX_NAME = 200
_CONFLICT_RETRIES = 5
_REMEMBERED_KEYS = 10_000

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


SystemCommand = CreateApp | UpdateApp | DeleteApp | IdentityCommand
Answer = AppRecord | UserRecord | MemberRecord | KeyRecord | None


def check_slug(slug: str) -> None:
    if not _SLUG.match(slug):
        raise InvalidInput(
            f"invalid slug {slug[:80]!r}: use 1-63 lowercase letters, digits and "
            "hyphens, starting and ending with a letter or digit"
        )
    if slug in _RESERVED_SLUGS or _UUID.match(slug):
        raise InvalidInput(f"the slug {slug!r} is reserved")


def _app(state: SystemState, ref: str) -> AppInfo:
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
        case _:
            return decide_identity(state, command)
    raise InvalidInput(f"unknown command {type(command).__name__}")


def app_record(app: AppInfo) -> AppRecord:
    return AppRecord(
        id=app.id,
        slug=app.slug,
        name=app.name,
        created_at=app.created_at,
        updated_at=app.updated_at,
    )


class ControlPlane:
    """Decides and records system commands; see the module docstring."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self._state = SystemState()
        self._lock = asyncio.Lock()
        self._answers: OrderedDict[str, list[RecordedEvent]] = OrderedDict()

    @property
    def state(self) -> SystemState:
        return self._state

    async def catch_up(self) -> None:
        """Apply every system event written since the state's version."""
        while True:
            batch = await self._log.read_stream(SYSTEM_STREAM, self._state.version)
            if not batch:
                return
            for recorded in batch:
                self._remember(recorded)
                self._state = evolve_system(self._state, recorded)

    async def execute(
        self, command: SystemCommand, meta: EventMeta
    ) -> list[RecordedEvent]:
        """Decide, append and apply ``command``; return the recorded events."""
        async with self._lock:
            key = meta.idempotency_key
            await self.catch_up()
            if key is not None and key in self._answers:
                return self._answers[key]
            for _ in range(_CONFLICT_RETRIES):
                events = decide_system(self._state, command)
                if not events:
                    return []
                try:
                    recorded = await self._append(events, meta)
                except VersionConflict:
                    await self.catch_up()
                    if key is not None and key in self._answers:
                        return self._answers[key]
                    continue
                for r in recorded:
                    self._remember(r)
                    self._state = evolve_system(self._state, r)
                return recorded
            raise VersionConflict(SYSTEM_STREAM, self._state.version)

    async def _append(
        self, events: list[Event], meta: EventMeta
    ) -> list[RecordedEvent]:
        async with self._log.transaction() as tx:
            recorded = await tx.append(SYSTEM_STREAM, self._state.version, events, meta)
            await project_system(tx.conn, recorded)
        return recorded

    def _remember(self, recorded: RecordedEvent) -> None:
        key = recorded.meta.idempotency_key
        if key is None:
            return
        self._answers.setdefault(key, []).append(recorded)
        self._answers.move_to_end(key)
        while len(self._answers) > _REMEMBERED_KEYS:
            self._answers.popitem(last=False)


def answer(
    state: SystemState, command: SystemCommand, recorded: list[RecordedEvent]
) -> Answer:
    """The API's answer to ``command``, which recorded ``recorded``: the thing now."""
    if not isinstance(command, CreateApp | UpdateApp | DeleteApp):
        return identity_answer(state, command, [r.event for r in recorded])
    for r in reversed(recorded):
        event = r.event
        if isinstance(event, AppCreated | AppUpdated):
            app = state.apps.get(event.app_id)
            return None if app is None else app_record(app)
    return None
