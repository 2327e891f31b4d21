"""Pure decisions on an app's admin commands: ``decide(state, command) -> events``.

Each function validates the command against the app's control state and
returns the events that record it, or raises a RequestError naming the problem.
"""

from __future__ import annotations

import uuid

from picloud.config import Settings
from picloud.domain.access import script_capabilities
from picloud.domain.commands import (
    AddRoute,
    AddTrigger,
    DeleteScript,
    RecordHostKill,
    RemoveRoute,
    RemoveTrigger,
    SaveScript,
)
from picloud.domain.delivery_policy import check_retry
from picloud.domain.names import METHODS, check_script_name, normalise_path, path_shape
from picloud.domain.records import RouteRecord, ScriptRecord
from picloud.domain.triggers import decide_add_trigger, decide_remove_trigger
from picloud.domain.values import check_text
from picloud.errors import Conflict, InvalidInput, NotFound
from picloud.events import Event, utcnow
from picloud.events.app import (
    AppQuarantined,
    HostKilled,
    RouteAdded,
    RouteRemoved,
    ScriptDeleted,
    ScriptSaved,
)
from picloud.events.app_state import AppState, RouteInfo, ScriptInfo
from picloud.events.triggers import TriggerRemoved
from picloud.scripting import validate_source
from picloud.scripting.modules import (
    check_module_name,
    check_module_source,
    imports_of,
)

DEFAULTS = Settings()

__all__ = [
    "AdminCommand",
    "decide_add_route",
    "decide_admin",
    "decide_delete_script",
    "decide_host_kill",
    "decide_remove_route",
    "decide_save_script",
    "importers",
    "route_record",
    "script_record",
]

_MAX_SOURCE = 256 * 1024


def _script(state: AppState, script_id: str) -> ScriptInfo:
    script = state.scripts.get(script_id)
    if script is None:
        raise NotFound(f"no script {script_id[:80]!r} in this app")
    return script


def decide_save_script(state: AppState, command: SaveScript) -> list[Event]:
    """Create (no ``script_id``) or replace a script; the source must compile."""
    if len(command.source.encode()) > _MAX_SOURCE:
        raise InvalidInput(f"source is larger than {_MAX_SOURCE // 1024} KiB")
    check_text(command.source, "the source")
    if command.script_id is None:
        name = command.name or ""
        check_script_name(name)
        if name in state.script_names:
            raise Conflict(f"a script named {name!r} already exists in this app")
        script_id, version, kind = str(uuid.uuid4()), 1, command.kind
    else:
        old = _script(state, command.script_id)
        if command.name is not None and command.name != old.name:
            raise InvalidInput("a script cannot be renamed; create a new one")
        script_id, version, name = old.id, old.version + 1, old.name
        kind = "module" if old.kind == "module" else "endpoint"
    return [
        ScriptSaved(
            at=utcnow(),
            app_id=state.app_id,
            script_id=script_id,
            name=name,
            kind=kind,
            source=command.source,
            version=version,
            imports=_checked_imports(name, kind, command.source),
        )
    ]


def _checked_imports(name: str, kind: str, source: str) -> list[str]:
    """Validate ``source`` (Lua syntax; for a module its name and shape) and
    return the module names it requires literally."""
    if kind == "module":
        check_module_name(name)
    validate_source(name, source)
    if kind == "module":
        check_module_source(name, source)
    return imports_of(source)


def importers(state: AppState, script: ScriptInfo) -> list[str]:
    """The other scripts of the app that require module ``script`` literally."""
    if script.kind != "module":
        return []
    return sorted(
        s.name
        for s in state.scripts.values()
        if s.id != script.id and script.name in s.imports
    )


def decide_delete_script(state: AppState, command: DeleteScript) -> list[Event]:
    """Delete a script and the routes and triggers that target it; a module
    other scripts import only with ``force`` (they then fail at require)."""
    script = _script(state, command.script_id)
    users = [] if command.force else importers(state, script)
    if users:
        raise Conflict(
            f"module {script.name!r} is imported by {', '.join(users)}; change "
            "them first, or delete it with ?force=true"
        )
    now = utcnow()
    events: list[Event] = [
        RouteRemoved(at=now, app_id=state.app_id, route_id=route.id)
        for route in state.routes.values()
        if route.script_id == script.id
    ]
    events += [
        TriggerRemoved(at=now, app_id=state.app_id, trigger_id=trigger.id)
        for trigger in state.triggers.values()
        if trigger.script_id == script.id
    ]
    events.append(
        ScriptDeleted(
            at=now, app_id=state.app_id, script_id=script.id, name=script.name
        )
    )
    return events


def decide_add_route(
    state: AppState, command: AddRoute, settings: Settings = DEFAULTS
) -> list[Event]:
    script = _script(state, command.script_id)
    if script.kind == "module":
        raise InvalidInput(
            f"script {script.name!r} is a module; routes can only target endpoints"
        )
    method = command.method.upper()
    if method not in METHODS:
        raise InvalidInput(
            f"method {command.method[:20]!r} is not one of {', '.join(sorted(METHODS))}"
        )
    path = normalise_path(command.path)
    script_capabilities(command.capabilities)  # refuse a bad grant now
    if command.retry is not None and command.dispatch_mode != "async":
        raise InvalidInput(
            "a sync route is never retried: retry applies to dispatch_mode async"
        )
    check_retry(command.retry, settings)
    shape = path_shape(path)
    for route in state.routes.values():
        if route.method == method and path_shape(route.path) == shape:
            raise Conflict(f"{method} {route.path} is already routed in this app")
    return [
        RouteAdded(
            at=utcnow(),
            app_id=state.app_id,
            route_id=str(uuid.uuid4()),
            script_id=script.id,
            method=method,
            path=path,
            dispatch_mode=command.dispatch_mode,
            capabilities=command.capabilities,
            retry=command.retry,
        )
    ]


def decide_remove_route(state: AppState, command: RemoveRoute) -> list[Event]:
    if command.route_id not in state.routes:
        raise NotFound(f"no route {command.route_id[:80]!r} in this app")
    return [RouteRemoved(at=utcnow(), app_id=state.app_id, route_id=command.route_id)]


def decide_host_kill(
    state: AppState, command: RecordHostKill, *, threshold: int, window_s: float
) -> list[Event]:
    """Record the kill; at the ``threshold``-th in the window, quarantine the app."""
    now = utcnow()
    events: list[Event] = [
        HostKilled(
            at=now,
            app_id=state.app_id,
            host=command.host,
            execution_id=command.execution_id,
        )
    ]
    recent = [t for t in state.host_kills if (now - t).total_seconds() <= window_s]
    if not state.quarantined and len(recent) + 1 >= threshold:
        events.append(
            AppQuarantined(at=now, app_id=state.app_id, host_kills=len(recent) + 1)
        )
    return events


AdminCommand = (
    SaveScript
    | DeleteScript
    | AddRoute
    | RemoveRoute
    | AddTrigger
    | RemoveTrigger
    | RecordHostKill
)


def decide_admin(
    state: AppState, command: AdminCommand, settings: Settings
) -> list[Event]:
    """The events of one admin command on the app's scripts, routes or hosting."""
    match command:
        case SaveScript():
            return decide_save_script(state, command)
        case DeleteScript():
            return decide_delete_script(state, command)
        case AddRoute():
            return decide_add_route(state, command, settings)
        case RemoveRoute():
            return decide_remove_route(state, command)
        case AddTrigger():
            return decide_add_trigger(state, command, settings)
        case RemoveTrigger():
            return decide_remove_trigger(state, command)
        case RecordHostKill():
            return decide_host_kill(
                state,
                command,
                threshold=settings.host_crash_quarantine_after,
                window_s=settings.host_crash_window_s,
            )


def script_record(state: AppState, script: ScriptInfo) -> ScriptRecord:
    return ScriptRecord(
        id=script.id,
        app_id=state.app_id,
        name=script.name,
        kind=script.kind,  # type: ignore[arg-type]  # checked on save
        version=script.version,
        source=script.source,
        imports=list(script.imports),
        used_by=importers(state, script),
        created_at=script.created_at,
        updated_at=script.updated_at,
    )


def route_record(state: AppState, route: RouteInfo) -> RouteRecord:
    return RouteRecord(
        id=route.id,
        app_id=state.app_id,
        script_id=route.script_id,
        method=route.method,
        path=route.path,
        dispatch_mode=route.dispatch_mode,  # type: ignore[arg-type]  # checked on add
        capabilities=None if route.capabilities is None else list(route.capabilities),
        retry=route.retry,
    )
