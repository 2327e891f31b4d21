"""Snapshots of an app's state (control state and pending deliveries), for fast
activation. A snapshot is a cache: one this version cannot read is ignored and
the state is rebuilt from the log."""

from __future__ import annotations

from datetime import datetime

import msgspec
from pyrsistent import InvariantException, pmap, pset, pvector

from picloud.events.app import CorsPolicy, RetryPolicy
from picloud.events.app_state import AppState, RouteInfo, ScriptInfo
from picloud.events.pending import Deliveries, Delivery, TriggerInfo

__all__ = ["decode_snapshot", "encode_snapshot"]

_FORMAT = "snapshot.v3"


class _Script(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    kind: str
    source: str
    version: int
    imports: list[str]
    created_at: datetime
    updated_at: datetime


class _Route(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    script_id: str
    method: str
    path: str
    dispatch_mode: str
    capabilities: tuple[str, ...] | None = None
    retry: RetryPolicy | None = None


class _Trigger(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: str
    script_id: str
    ops: list[str]
    collection: str | None
    capabilities: list[str] | None
    retry: RetryPolicy | None = None
    cron: str | None = None
    timezone: str | None = None
    added_at: datetime | None = None
    last_fired: datetime | None = None


class _Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    format: str
    version: int
    scripts: list[_Script]
    routes: list[_Route]
    triggers: list[_Trigger]
    deliveries: list[Delivery]
    host_kills: list[datetime]
    quarantined: bool
    cors: CorsPolicy | None = None
    fetch_hosts: list[str] | None = None


def encode_snapshot(state: AppState, deliveries: Deliveries, version: int) -> bytes:
    return msgspec.json.encode(
        _Snapshot(
            format=_FORMAT,
            version=version,
            scripts=[
                _Script(
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
                _Route(
                    id=r.id,
                    script_id=r.script_id,
                    method=r.method,
                    path=r.path,
                    dispatch_mode=r.dispatch_mode,
                    capabilities=r.capabilities,
                    retry=r.retry,
                )
                for r in state.routes.values()
            ],
            triggers=[
                _Trigger(
                    id=t.id,
                    kind=t.kind,
                    script_id=t.script_id,
                    ops=sorted(t.ops),
                    collection=t.collection,
                    capabilities=None
                    if t.capabilities is None
                    else list(t.capabilities),
                    retry=t.retry,
                    cron=t.cron,
                    timezone=t.timezone,
                    added_at=t.added_at,
                    last_fired=t.last_fired,
                )
                for t in state.triggers.values()
            ],
            deliveries=list(deliveries.values()),
            host_kills=list(state.host_kills),
            quarantined=state.quarantined,
            cors=state.cors,
            fetch_hosts=None if state.fetch_hosts is None else list(state.fetch_hosts),
        )
    )


def decode_snapshot(
    app_id: str, data: bytes
) -> tuple[AppState, Deliveries, int] | None:
    """The state, deliveries and stream version; None for an unreadable snapshot."""
    try:
        snap = msgspec.json.decode(data, type=_Snapshot)
    except msgspec.DecodeError:
        return None
    if snap.format != _FORMAT:
        return None
    try:
        return _loaded(app_id, snap)
    except (TypeError, ValueError, InvariantException):
        return None  # well-formed JSON, impossible values: a cache, so ignored


def _loaded(app_id: str, snap: _Snapshot) -> tuple[AppState, Deliveries, int]:
    state = AppState(
        app_id=app_id,
        scripts=pmap({s.id: _script(s) for s in snap.scripts}),
        script_names=pmap({s.name: s.id for s in snap.scripts}),
        routes=pmap(
            {r.id: RouteInfo(**msgspec.structs.asdict(r)) for r in snap.routes}
        ),
        triggers=pmap({t.id: _trigger(t) for t in snap.triggers}),
        host_kills=pvector(snap.host_kills),
        quarantined=snap.quarantined,
        cors=snap.cors,
        fetch_hosts=None if snap.fetch_hosts is None else tuple(snap.fetch_hosts),
    )
    return state, pmap({d.id: d for d in snap.deliveries}), snap.version


def _script(s: _Script) -> ScriptInfo:
    return ScriptInfo(
        id=s.id,
        name=s.name,
        kind=s.kind,
        source=s.source,
        version=s.version,
        imports=pvector(s.imports),
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


def _trigger(t: _Trigger) -> TriggerInfo:
    return TriggerInfo(
        id=t.id,
        kind=t.kind,
        script_id=t.script_id,
        ops=pset(t.ops),
        collection=t.collection,
        capabilities=None if t.capabilities is None else tuple(t.capabilities),
        retry=t.retry,
        cron=t.cron,
        timezone=t.timezone,
        added_at=t.added_at,
        last_fired=t.last_fired,
    )
