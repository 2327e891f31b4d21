"""Builders shared by the decider tests: states reached by deciding real
commands and folding the events they return with the real evolve functions."""

from __future__ import annotations

from picloud.config import Settings
from picloud.domain.app import AdminCommand, decide_admin
from picloud.domain.commands import SaveScript
from picloud.domain.identity import CreateUser
from picloud.domain.system import SystemCommand, decide_system
from picloud.events.app_state import AppState, ScriptInfo
from picloud.events.system_state import SystemState
from tests.events.helpers import APP, fold_app, fold_system

__all__ = [
    "HASH",
    "SETTINGS",
    "endpoint",
    "module",
    "run_app",
    "run_system",
    "saved",
    "uid",
    "with_users",
]

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
"""Shaped like an argon2id hash: the deciders take hashes, never passwords."""

SETTINGS = Settings()


def run_app(state: AppState | None, *commands: AdminCommand) -> AppState:
    """Decide and apply ``commands`` in turn, as the app's actor would."""
    state = AppState(app_id=APP) if state is None else state
    for command in commands:
        state = fold_app(decide_admin(state, command, SETTINGS), state)
    return state


def saved(state: AppState, name: str) -> ScriptInfo:
    script = state.script_named(name)
    assert script is not None, name
    return script


def run_system(state: SystemState, *commands: SystemCommand) -> SystemState:
    """Decide and apply ``commands`` in turn, as the ControlPlane would."""
    for command in commands:
        state = fold_system(decide_system(state, command), state)
    return state


def with_users(*names: str, admin: str = "root") -> SystemState:
    """A system with one admin and ``names`` as plain users."""
    state = run_system(
        SystemState(), CreateUser(username=admin, password_hash=HASH, admin=True)
    )
    for name in names:
        state = run_system(state, CreateUser(username=name, password_hash=HASH))
    return state


def uid(state: SystemState, name: str) -> str:
    user = state.user(name)
    assert user is not None, name
    return user.id


def endpoint(name: str, source: str = "return 1") -> SaveScript:
    return SaveScript(name=name, source=source)


def module(name: str, source: str = "local M = {}\nreturn M") -> SaveScript:
    return SaveScript(name=name, kind="module", source=source)
