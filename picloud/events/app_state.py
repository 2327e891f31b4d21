"""An app's control state, evolved from its stream (pure, pyrsistent).

Control state is what decides commands: scripts, routes, triggers and the
app's hosting record. Data (KV, documents), the execution log and dead letters
live in projections; pending deliveries in :mod:`picloud.events.pending`.
"""

from __future__ import annotations

from datetime import datetime

from pyrsistent import PClass, field, pmap, pvector
from pyrsistent.typing import PMap, PVector

from picloud.events._base import Event
from picloud.events.app import (
    AppQuarantined,
    CorsPolicy,
    CorsSet,
    FetchHostsSet,
    HostKilled,
    RetryPolicy,
    RouteAdded,
    RouteRemoved,
    ScriptDeleted,
    ScriptSaved,
)
from picloud.events.pending import TriggerInfo, trigger_info
from picloud.events.triggers import ScheduleFired, TriggerAdded, TriggerRemoved

__all__ = ["AppState", "RouteInfo", "ScriptInfo", "evolve_app"]


class ScriptInfo(PClass):
    id: str = field(type=str, mandatory=True)
    name: str = field(type=str, mandatory=True)
    kind: str = field(type=str, mandatory=True)
    source: str = field(type=str, mandatory=True)
    version: int = field(type=int, mandatory=True)
    imports: PVector[str] = field(initial=pvector())
    created_at: datetime = field(type=datetime, mandatory=True)
    updated_at: datetime = field(type=datetime, mandatory=True)


class RouteInfo(PClass):
    id: str = field(type=str, mandatory=True)
    script_id: str = field(type=str, mandatory=True)
    method: str = field(type=str, mandatory=True)
    path: str = field(type=str, mandatory=True)
    dispatch_mode: str = field(type=str, mandatory=True)
    capabilities: tuple[str, ...] | None = field(type=(tuple, type(None)), initial=None)
    retry: RetryPolicy | None = field(type=(RetryPolicy, type(None)), initial=None)


class AppState(PClass):
    """The control state of one app (its stream version is kept beside it)."""

    app_id: str = field(type=str, mandatory=True)
    scripts: PMap[str, ScriptInfo] = field(initial=pmap())
    script_names: PMap[str, str] = field(initial=pmap())
    routes: PMap[str, RouteInfo] = field(initial=pmap())
    triggers: PMap[str, TriggerInfo] = field(initial=pmap())
    host_kills: PVector[datetime] = field(initial=pvector())
    quarantined: bool = field(type=bool, initial=False)
    cors: CorsPolicy | None = field(type=(CorsPolicy, type(None)), initial=None)
    fetch_hosts: tuple[str, ...] | None = field(type=(tuple, type(None)), initial=None)

    def script_named(self, name: str) -> ScriptInfo | None:
        script_id = self.script_names.get(name)
        return None if script_id is None else self.scripts.get(script_id)


def evolve_app(state: AppState, event: Event) -> AppState:
    """The state after ``event`` (the same state if it changes no control state)."""
    match event:
        case ScriptSaved():
            old = state.scripts.get(event.script_id)
            script = ScriptInfo(
                id=event.script_id,
                name=event.name,
                kind=event.kind,
                source=event.source,
                version=event.version,
                imports=pvector(event.imports),
                created_at=event.at if old is None else old.created_at,
                updated_at=event.at,
            )
            return state.set(
                scripts=state.scripts.set(event.script_id, script),
                script_names=state.script_names.set(event.name, event.script_id),
            )
        case ScriptDeleted():
            return state.set(
                scripts=state.scripts.discard(event.script_id),
                script_names=state.script_names.discard(event.name),
            )
        case RouteAdded():
            route = RouteInfo(
                id=event.route_id,
                script_id=event.script_id,
                method=event.method,
                path=event.path,
                dispatch_mode=event.dispatch_mode,
                capabilities=None
                if event.capabilities is None
                else tuple(event.capabilities),
                retry=event.retry,
            )
            return state.set(routes=state.routes.set(event.route_id, route))
        case RouteRemoved():
            return state.set(routes=state.routes.discard(event.route_id))
        case TriggerAdded():
            return state.set(
                triggers=state.triggers.set(event.trigger_id, trigger_info(event))
            )
        case TriggerRemoved():
            return state.set(triggers=state.triggers.discard(event.trigger_id))
        case _:
            return _evolve_hosting_and_settings(state, event)


def _evolve_hosting_and_settings(state: AppState, event: Event) -> AppState:
    match event:
        case HostKilled():
            return state.set(host_kills=state.host_kills.append(event.at))
        case AppQuarantined():
            return state.set(quarantined=True)
        case ScheduleFired():
            trigger = state.triggers.get(event.trigger_id)
            if trigger is None:
                return state
            fired = trigger.set(last_fired=event.scheduled_at)
            return state.set(triggers=state.triggers.set(trigger.id, fired))
        case CorsSet():
            return state.set(cors=event.cors)
        case FetchHostsSet():
            hosts = None if event.hosts is None else tuple(event.hosts)
            return state.set(fetch_hosts=hosts)
        case _:
            return state
