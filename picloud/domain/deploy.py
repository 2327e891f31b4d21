"""Deploying a folder: an app's desired scripts, routes and triggers become
one change set — the events of every change, decided in order against the
state the earlier ones make, appended as one batch: all or nothing.

Scripts are matched by name, routes by (method, path), triggers by all
they are (kind, script, ops, collection, grants, retry policy, schedule): a
route or trigger that differs is removed and added again. What the app has
and the folder does not is removed when ``prune`` (the default: the folder
is the truth). The CORS policy is set when the folder gives one.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from picloud.config import Settings
from picloud.domain.app import AdminCommand, decide_admin
from picloud.domain.app_settings import decide_settings
from picloud.domain.commands import (
    AddRoute,
    AddTrigger,
    DeleteScript,
    DesiredApp,
    DesiredRoute,
    DesiredTrigger,
    RemoveRoute,
    RemoveTrigger,
    SaveScript,
    SetCors,
)
from picloud.domain.names import normalise_path
from picloud.errors import InvalidInput, NotFound
from picloud.events import Event
from picloud.events.app import CorsPolicy, RetryPolicy
from picloud.events.app_state import AppState, RouteInfo, evolve_app
from picloud.events.pending import TriggerInfo

__all__ = ["Change", "decide_deploy"]


Action = Literal["create", "update", "delete"]
What = Literal["script", "route", "trigger", "cors"]


class Change(msgspec.Struct, frozen=True, kw_only=True):
    action: Action
    what: What
    name: str
    """The script's name, ``GET /path``, or ``kv:script(ops) collection``."""


def decide_deploy(
    state: AppState, desired: DesiredApp, settings: Settings
) -> tuple[list[Event], list[Change]]:
    """The events of the whole change set and the changes they make; raises
    the first command's error (nothing is then appended)."""
    _check_unique(desired)
    plan = _Plan(state, settings)
    plan.scripts(desired)
    plan.routes(desired)
    plan.triggers(desired)
    if desired.prune:
        plan.prune_scripts(desired)
    if desired.cors is not msgspec.UNSET:
        plan.cors(desired.cors)
    return plan.events, plan.changes


def _check_unique(desired: DesiredApp) -> None:
    for what, keys in (
        ("script", [s.name for s in desired.scripts]),
        (
            "route",
            [f"{r.method.upper()} {normalise_path(r.path)}" for r in desired.routes],
        ),
        ("trigger", [_trigger_name(t) for t in desired.triggers]),
    ):
        seen: set[str] = set()
        for key in keys:
            if key in seen:
                raise InvalidInput(f"the {what} {key[:80]!r} is given twice")
            seen.add(key)


def _route_name(method: str, path: str) -> str:
    return f"{method.upper()} {normalise_path(path)}"


def _trigger_name(t: DesiredTrigger) -> str:
    """All a trigger is, as one readable key (two triggers with the same
    key are the same trigger)."""
    if t.kind == "schedule":
        name = f"schedule:{t.script} {t.cron!r} {t.timezone or 'UTC'}"
    else:
        ops = ",".join(sorted(set(t.ops))) or "*"
        name = f"{t.kind}:{t.script}({ops}) {t.collection or '*'}"
    if t.capabilities is not None:
        name += " granting " + ",".join(sorted(set(t.capabilities)))
    if t.retry is not None:
        name += f" retry {_retry_text(t.retry)}"
    return name


def _retry_text(retry: RetryPolicy) -> str:
    return msgspec.json.encode(retry).decode()


def _same_route(have: RouteInfo, want: DesiredRoute, script_id: str) -> bool:
    granted = None if want.capabilities is None else sorted(set(want.capabilities))
    had = None if have.capabilities is None else sorted(have.capabilities)
    return (
        have.script_id == script_id
        and have.dispatch_mode == want.dispatch_mode
        and had == granted
        and have.retry == want.retry
    )


def _as_desired(t: TriggerInfo, script: str) -> DesiredTrigger:
    return DesiredTrigger(
        kind=t.kind,
        script=script,
        ops=sorted(t.ops),
        collection=t.collection,
        capabilities=None if t.capabilities is None else list(t.capabilities),
        retry=t.retry,
        cron=t.cron,
        timezone=t.timezone,
    )


class _Plan:
    """The change set being decided: the state after each command so far."""

    def __init__(self, state: AppState, settings: Settings) -> None:
        self.state = state
        self.settings = settings
        self.events: list[Event] = []
        self.changes: list[Change] = []

    def _apply(
        self, command: AdminCommand, action: Action, what: What, name: str
    ) -> None:
        try:
            events = decide_admin(self.state, command, self.settings)
        except (InvalidInput, NotFound) as e:  # which of the folder's items
            raise type(e)(f"{what} {name}: {e.message}") from None
        for event in events:
            self.state = evolve_app(self.state, event)
        self.events += events
        self.changes.append(Change(action=action, what=what, name=name))

    def _script_id(self, name: str) -> str:
        script = self.state.script_named(name)
        if script is None:
            raise InvalidInput(f"no script {name[:80]!r} in the app or the folder")
        return script.id

    def scripts(self, desired: DesiredApp) -> None:
        # Modules first: the endpoints that require them come after.
        ordered = sorted(desired.scripts, key=lambda s: s.kind != "module")
        for wanted in ordered:
            have = self.state.script_named(wanted.name)
            if have is None:
                command = SaveScript(
                    name=wanted.name, kind=wanted.kind, source=wanted.source
                )
                self._apply(command, "create", "script", wanted.name)
            elif have.kind != wanted.kind:
                raise InvalidInput(
                    f"script {wanted.name!r} is a {have.kind}; a script cannot change"
                    " kind (delete it first, or give the new one another name)"
                )
            elif have.source != wanted.source:
                command = SaveScript(script_id=have.id, source=wanted.source)
                self._apply(command, "update", "script", wanted.name)

    def routes(self, desired: DesiredApp) -> None:
        wanted = {(r.method.upper(), normalise_path(r.path)): r for r in desired.routes}
        for route in list(self.state.routes.values()):
            want = wanted.get((route.method, route.path))
            same = want is not None and _same_route(
                route, want, self._script_id(want.script)
            )
            if not same and (want is not None or desired.prune):
                self._apply(
                    RemoveRoute(route_id=route.id),
                    "delete",
                    "route",
                    f"{route.method} {route.path}",
                )
        present = {(r.method, r.path) for r in self.state.routes.values()}
        for key, want in wanted.items():
            if key not in present:
                command = AddRoute(
                    script_id=self._script_id(want.script),
                    method=want.method,
                    path=want.path,
                    dispatch_mode=want.dispatch_mode,
                    capabilities=want.capabilities,
                    retry=want.retry,
                )
                self._apply(command, "create", "route", " ".join(key))

    def triggers(self, desired: DesiredApp) -> None:
        names = {s.id: s.name for s in self.state.scripts.values()}
        current = {
            _trigger_name(_as_desired(t, names.get(t.script_id, "?"))): t
            for t in self.state.triggers.values()
        }
        wanted = {_trigger_name(t): t for t in desired.triggers}
        for name, trigger in current.items():
            if name not in wanted and desired.prune:
                self._apply(
                    RemoveTrigger(trigger_id=trigger.id), "delete", "trigger", name
                )
        for name, want in wanted.items():
            if name not in current:
                command = AddTrigger(
                    kind=want.kind,
                    script_id=self._script_id(want.script),
                    ops=want.ops,
                    collection=want.collection,
                    capabilities=want.capabilities,
                    retry=want.retry,
                    cron=want.cron,
                    timezone=want.timezone,
                )
                self._apply(command, "create", "trigger", name)

    def prune_scripts(self, desired: DesiredApp) -> None:
        keep = {s.name for s in desired.scripts}
        # Endpoints before modules: a module's importers go first.
        gone = [s for s in self.state.scripts.values() if s.name not in keep]
        for script in sorted(gone, key=lambda s: s.kind == "module"):
            command = DeleteScript(script_id=script.id, force=True)
            self._apply(command, "delete", "script", script.name)

    def cors(self, wanted: CorsPolicy | None) -> None:
        events = decide_settings(self.state, SetCors(cors=wanted))
        for event in events:
            self.state = evolve_app(self.state, event)
        self.events += events
        if events:
            action: Action = "delete" if wanted is None else "update"
            self.changes.append(Change(action=action, what="cors", name="cors"))
