"""The system stream's state, evolved from its events (pure, pyrsistent)."""

from __future__ import annotations

from datetime import datetime
from typing import assert_never

from pyrsistent import PClass, field, pmap
from pyrsistent.typing import PMap

from picloud.events._base import RecordedEvent
from picloud.events.system import AppCreated, AppDeleted, AppUpdated, SystemEvent

__all__ = ["AppInfo", "SystemState", "evolve_system"]


class AppInfo(PClass):
    id: str = field(type=str, mandatory=True)
    slug: str = field(type=str, mandatory=True)
    name: str = field(type=str, mandatory=True)
    created_at: datetime = field(type=datetime, mandatory=True)
    updated_at: datetime = field(type=datetime, mandatory=True)


class SystemState(PClass):
    """Apps by id and by slug, at ``version`` of the system stream."""

    version: int = field(type=int, initial=0)
    apps: PMap[str, AppInfo] = field(initial=pmap())
    slugs: PMap[str, str] = field(initial=pmap())

    def app(self, id_or_slug: str) -> AppInfo | None:
        app: AppInfo | None = self.apps.get(id_or_slug)
        if app is None and id_or_slug in self.slugs:
            app = self.apps[self.slugs[id_or_slug]]
        return app


def evolve_system(state: SystemState, recorded: RecordedEvent) -> SystemState:
    """The state after ``recorded``; events of other types only bump the version."""
    state = state.set(version=recorded.version)
    event = recorded.event
    if not isinstance(event, SystemEvent):
        return state
    return _apply(state, event)


def _apply(state: SystemState, event: SystemEvent) -> SystemState:
    match event:
        case AppCreated(app_id=app_id, slug=slug, name=name, at=at):
            app = AppInfo(id=app_id, slug=slug, name=name, created_at=at, updated_at=at)
            return state.set(
                apps=state.apps.set(app_id, app), slugs=state.slugs.set(slug, app_id)
            )
        case AppUpdated(app_id=app_id, slug=slug, name=name, at=at):
            old = state.apps[app_id]
            slugs = state.slugs.remove(old.slug).set(slug, app_id)
            app = old.set(slug=slug, name=name, updated_at=at)
            return state.set(apps=state.apps.set(app_id, app), slugs=slugs)
        case AppDeleted(app_id=app_id, slug=slug):
            return state.set(
                apps=state.apps.discard(app_id), slugs=state.slugs.discard(slug)
            )
        case _:
            assert_never(event)
