"""Builders shared by the tests of the pure event layer: fixed times, log
positions, and states folded from real events by the real evolve functions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from picloud.events import Event, EventMeta, RecordedEvent
from picloud.events.app import (
    DispatchMode,
    RetryPolicy,
    RouteAdded,
    ScriptKind,
    ScriptSaved,
)
from picloud.events.app_state import AppState, evolve_app
from picloud.events.system_state import SystemState, evolve_system
from picloud.events.triggers import TriggerAdded

__all__ = [
    "APP",
    "AT",
    "fold_app",
    "fold_system",
    "later",
    "recorded",
    "route_added",
    "script_saved",
    "trigger_added",
]

APP = "11111111-1111-4111-8111-111111111111"
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def later(seconds: float) -> datetime:
    """``AT`` plus ``seconds``: events of a test happen at known, distinct times."""
    return AT + timedelta(seconds=seconds)


def recorded(
    event: Event, version: int, *, stream: str = "system", depth: int = 0
) -> RecordedEvent:
    """``event`` as the log would hand it back at ``version``."""
    return RecordedEvent(
        position=version,
        txid=version,
        stream=stream,
        version=version,
        event=event,
        meta=EventMeta(actor="test", trigger_depth=depth),
        recorded_at=event.at,
    )


def fold_app(events: Iterable[Event], state: AppState | None = None) -> AppState:
    """The app's control state after ``events``, by :func:`evolve_app`."""
    state = AppState(app_id=APP) if state is None else state
    for event in events:
        state = evolve_app(state, event)
    return state


def fold_system(
    events: Iterable[Event], state: SystemState | None = None
) -> SystemState:
    """The system state after ``events``, each recorded at the next version."""
    state = SystemState() if state is None else state
    for event in events:
        state = evolve_system(state, recorded(event, state.version + 1))
    return state


def script_saved(
    script_id: str,
    name: str,
    *,
    version: int = 1,
    kind: ScriptKind = "endpoint",
    imports: list[str] | None = None,
    at: datetime = AT,
) -> ScriptSaved:
    return ScriptSaved(
        at=at,
        app_id=APP,
        script_id=script_id,
        name=name,
        kind=kind,
        source="return 1",
        version=version,
        imports=[] if imports is None else imports,
    )


def route_added(
    route_id: str,
    script_id: str,
    *,
    method: str = "GET",
    path: str = "/",
    dispatch_mode: DispatchMode = "sync",
    retry: RetryPolicy | None = None,
) -> RouteAdded:
    return RouteAdded(
        at=AT,
        app_id=APP,
        route_id=route_id,
        script_id=script_id,
        method=method,
        path=path,
        dispatch_mode=dispatch_mode,
        retry=retry,
    )


def trigger_added(
    trigger_id: str,
    script_id: str,
    *,
    kind: str = "kv",
    ops: list[str] | None = None,
    collection: str | None = None,
    capabilities: list[str] | None = None,
    retry: RetryPolicy | None = None,
    cron: str | None = None,
) -> TriggerAdded:
    return TriggerAdded(
        at=AT,
        app_id=APP,
        trigger_id=trigger_id,
        kind=kind,
        script_id=script_id,
        ops=[] if ops is None else ops,
        collection=collection,
        capabilities=capabilities,
        retry=retry,
        cron=cron,
    )
