"""Events of the ``system`` stream: apps (identity events join them later)."""

from __future__ import annotations

from picloud.events._base import Event

__all__ = ["AppCreated", "AppDeleted", "AppUpdated", "SystemEvent"]


class AppCreated(Event, frozen=True, tag="app.created.v1"):
    app_id: str
    slug: str
    name: str


class AppUpdated(Event, frozen=True, tag="app.updated.v1"):
    """The app's new slug and name (both given, even when one is unchanged)."""

    app_id: str
    slug: str
    name: str


class AppDeleted(Event, frozen=True, tag="app.deleted.v1"):
    app_id: str
    slug: str


SystemEvent = AppCreated | AppUpdated | AppDeleted
