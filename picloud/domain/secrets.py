"""Pure decisions on apps' secrets (events of the ``system`` stream, decided
by the ControlPlane, so the CLI sets them whether or not a server runs).

A command carries the value already sealed (:mod:`picloud.domain.secret_box`):
whoever takes it in — the admin API, the CLI — seals it at once, and nothing
after that ever holds it in clear until a script of its app reads it.
"""

from __future__ import annotations

import msgspec
from pyrsistent import pmap

from picloud.domain.names import SECRET_NAME
from picloud.domain.records import SecretRecord
from picloud.errors import NotFound
from picloud.events import Event, SecretDeleted, SecretSet, utcnow
from picloud.events.system_state import AppEntry, SystemState

__all__ = [
    "MAX_SECRET_BYTES",
    "DeleteSecret",
    "SecretCommand",
    "SetSecret",
    "decide_secret",
    "secret_answer",
]

MAX_SECRET_BYTES = 8 * 1024


class SetSecret(msgspec.Struct, frozen=True, kw_only=True):
    app: str
    name: str
    ciphertext: str
    key_id: str


class DeleteSecret(msgspec.Struct, frozen=True, kw_only=True):
    app: str
    name: str


SecretCommand = SetSecret | DeleteSecret


def _app(state: SystemState, ref: str) -> AppEntry:
    app = state.app(ref)
    if app is None:
        raise NotFound(f"no app {ref[:80]!r}")
    return app


def decide_secret(state: SystemState, command: SecretCommand) -> list[Event]:
    app = _app(state, command.app)
    name = SECRET_NAME.check(command.name)
    if isinstance(command, SetSecret):
        return [
            SecretSet(
                at=utcnow(),
                app_id=app.id,
                name=name,
                ciphertext=command.ciphertext,
                key_id=command.key_id,
            )
        ]
    if name not in state.secrets.get(app.id, pmap()):
        raise NotFound(f"no secret {name!r} in app {app.slug!r}")
    return [SecretDeleted(at=utcnow(), app_id=app.id, name=name)]


def secret_answer(state: SystemState, command: SecretCommand) -> SecretRecord | None:
    """The secret as listed (name and times, never its value) after ``command``."""
    app = state.app(command.app)
    if app is None or isinstance(command, DeleteSecret):
        return None
    info = state.secrets.get(app.id, pmap()).get(command.name)
    if info is None:
        return None
    return SecretRecord(
        app_id=app.id,
        name=command.name,
        created_at=info.created_at,
        updated_at=info.updated_at,
    )
