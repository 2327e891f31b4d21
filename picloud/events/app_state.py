"""An app's control state, evolved from its stream (pure, pyrsistent).

Control state is what decides commands: scripts, routes and the async
invocations accepted but not yet run. Data (KV, documents) and the execution
log live in projections, not here.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from pyrsistent import PClass, field, pmap, pvector
from pyrsistent.typing import PMap, PVector

from picloud.events._base import Event
from picloud.events.app import (
    AppQuarantined,
    HostKilled,
    InvocationAccepted,
    InvocationRecorded,
    RouteAdded,
    RouteRemoved,
    ScriptDeleted,
    ScriptSaved,
)

__all__ = [
    "AppSnapshot",
    "AppState",
    "RouteInfo",
    "ScriptInfo",
    "decode_snapshot",
    "encode_snapshot",
    "evolve_app",
]


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


class AppState(PClass):
    """The control state of one app (its stream version is kept beside it)."""

    app_id: str = field(type=str, mandatory=True)
    scripts: PMap[str, ScriptInfo] = field(initial=pmap())
    script_names: PMap[str, str] = field(initial=pmap())
    routes: PMap[str, RouteInfo] = field(initial=pmap())
    pending_async: PMap[str, InvocationAccepted] = field(initial=pmap())
    """Accepted async invocations not yet recorded as run, by execution id."""
    host_kills: PVector[datetime] = field(initial=pvector())
    quarantined: bool = field(type=bool, initial=False)

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
            )
            return state.set(routes=state.routes.set(event.route_id, route))
        case RouteRemoved():
            return state.set(routes=state.routes.discard(event.route_id))
        case InvocationAccepted():
            return state.set(
                pending_async=state.pending_async.set(event.execution_id, event)
            )
        case HostKilled():
            return state.set(host_kills=state.host_kills.append(event.at))
        case AppQuarantined():
            return state.set(quarantined=True)
        case InvocationRecorded() if event.execution_id in state.pending_async:
            return state.set(
                pending_async=state.pending_async.discard(event.execution_id)
            )
        case _:
            return state


class _ScriptSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    kind: str
    source: str
    version: int
    imports: list[str]
    created_at: datetime
    updated_at: datetime


class _RouteSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    script_id: str
    method: str
    path: str
    dispatch_mode: str


class AppSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The control state at ``version``, for fast activation (``snapshot.v1``)."""

    format: str = "snapshot.v1"
    version: int
    scripts: list[_ScriptSnapshot]
    routes: list[_RouteSnapshot]
    pending_async: list[InvocationAccepted]
    host_kills: list[datetime] = []
    quarantined: bool = False


_snapshot_decoder = msgspec.json.Decoder(AppSnapshot)


def encode_snapshot(state: AppState, version: int) -> bytes:
    return msgspec.json.encode(
        AppSnapshot(
            version=version,
            scripts=[
                _ScriptSnapshot(
                    id=s.id,
                    name=s.name,
                    kind=s.kind,
                    source=s.source,
                    version=s.version,
                    imports=list(s.imports),
                    created_at=s.created_at,
                    updated_at=s.updated_at,
                )
                for s in state.scripts.values()
            ],
            routes=[
                _RouteSnapshot(
                    id=r.id,
                    script_id=r.script_id,
                    method=r.method,
                    path=r.path,
                    dispatch_mode=r.dispatch_mode,
                )
                for r in state.routes.values()
            ],
            pending_async=list(state.pending_async.values()),
            host_kills=list(state.host_kills),
            quarantined=state.quarantined,
        )
    )


def decode_snapshot(app_id: str, data: bytes) -> tuple[AppState, int]:
    """The state and stream version a snapshot holds."""
    snap = _snapshot_decoder.decode(data)
    scripts = {
        s.id: ScriptInfo(
            id=s.id,
            name=s.name,
            kind=s.kind,
            source=s.source,
            version=s.version,
            imports=pvector(s.imports),
            created_at=s.created_at,
            updated_at=s.updated_at,
        )
        for s in snap.scripts
    }
    state = AppState(
        app_id=app_id,
        scripts=pmap(scripts),
        script_names=pmap({s.name: s.id for s in snap.scripts}),
        routes=pmap(
            {
                r.id: RouteInfo(
                    id=r.id,
                    script_id=r.script_id,
                    method=r.method,
                    path=r.path,
                    dispatch_mode=r.dispatch_mode,
                )
                for r in snap.routes
            }
        ),
        pending_async=pmap({p.execution_id: p for p in snap.pending_async}),
        host_kills=pvector(snap.host_kills),
        quarantined=snap.quarantined,
    )
    return state, snap.version
