"""Identity commands of the ControlPlane: users, memberships, API keys.

``decide_identity`` is pure: state and command in, events out (or a
RequestError). Commands carry hashes made by the caller — the front door or
the CLI — so a password or key secret never reaches the ControlPlane, Ray or
the log.

Invariants kept here:
- usernames are unique, case-insensitively (stored lower-case);
- the instance keeps at least one admin; every app keeps at least one owner;
- a key may be bound only to an app its user is a member of (or any app, for
  an admin); revoking is idempotent.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated

import msgspec

from picloud.domain.access import Role, parse_scopes
from picloud.domain.names import check_username
from picloud.domain.records import KeyRecord, MemberRecord, UserRecord
from picloud.errors import Conflict, InvalidInput, NotFound
from picloud.events import (
    ApiKeyCreated,
    ApiKeyRevoked,
    Event,
    MemberRemoved,
    MemberSet,
    UserAdminChanged,
    UserCreated,
    UserDeleted,
    UserPasswordChanged,
    utcnow,
)
from picloud.events.system_state import AppEntry, KeyInfo, SystemState, UserInfo

__all__ = [
    "CreateApiKey",
    "CreateUser",
    "DeleteUser",
    "IdentityCommand",
    "RemoveMember",
    "RevokeApiKey",
    "SetMember",
    "UpdateUser",
    "decide_identity",
    "identity_answer",
    "key_record",
    "user_record",
]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ARGON2 = "$argon2id$"

KeyName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class CreateUser(msgspec.Struct, frozen=True, kw_only=True):
    username: str
    password_hash: str
    admin: bool = False


class UpdateUser(msgspec.Struct, frozen=True, kw_only=True):
    """Change the admin flag, the password hash, or both."""

    user: str
    admin: bool | None = None
    password_hash: str | None = None


class DeleteUser(msgspec.Struct, frozen=True, kw_only=True):
    user: str


class SetMember(msgspec.Struct, frozen=True, kw_only=True):
    app: str
    user: str
    role: Role


class RemoveMember(msgspec.Struct, frozen=True, kw_only=True):
    app: str
    user: str


class CreateApiKey(msgspec.Struct, frozen=True, kw_only=True):
    user: str
    name: KeyName
    prefix: str
    secret_hash: str
    scopes: tuple[str, ...]
    app: str | None = None


class RevokeApiKey(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    user: str | None = None
    """When given, the key must be this user's (self-service revocation)."""


IdentityCommand = (
    CreateUser
    | UpdateUser
    | DeleteUser
    | SetMember
    | RemoveMember
    | CreateApiKey
    | RevokeApiKey
)


def _check_password_hash(encoded: str) -> None:
    # A guard against a plain password handed in by mistake: only hashes pass.
    if not encoded.startswith(_ARGON2):
        raise InvalidInput("password_hash must be an argon2id hash")


def _user(state: SystemState, ref: str) -> UserInfo:
    user = state.user(ref)
    if user is None:
        raise NotFound(f"no user {ref[:80]!r}")
    return user


def _app(state: SystemState, ref: str) -> AppEntry:
    app = state.app(ref)
    if app is None:
        raise NotFound(f"no app {ref[:80]!r}")
    return app


def _admins(state: SystemState) -> int:
    return sum(1 for u in state.users.values() if u.is_admin)


def _owners(state: SystemState, app_id: str) -> int:
    roles = state.members.get(app_id)
    return 0 if roles is None else sum(1 for m in roles.values() if m.role == "owner")


def decide_identity(state: SystemState, command: IdentityCommand) -> list[Event]:
    """The events ``command`` causes in ``state``; raises RequestErrors."""
    match command:
        case CreateUser() | UpdateUser() | DeleteUser():
            return _decide_user(state, command)
        case SetMember() | RemoveMember():
            return _decide_member(state, command)
        case CreateApiKey() | RevokeApiKey():
            return _decide_key(state, command)
    raise InvalidInput(f"unknown command {type(command).__name__}")


def _decide_user(
    state: SystemState, command: CreateUser | UpdateUser | DeleteUser
) -> list[Event]:
    now = utcnow()
    match command:
        case CreateUser(username=username, password_hash=hashed, admin=admin):
            name = check_username(username)
            _check_password_hash(hashed)
            if name in state.usernames:
                raise Conflict(f"a user named {name!r} already exists")
            user_id = str(uuid.uuid4())
            return [
                UserCreated(
                    at=now,
                    user_id=user_id,
                    username=name,
                    password_hash=hashed,
                    is_admin=admin,
                )
            ]
        case UpdateUser(user=ref, admin=admin, password_hash=hashed):
            user = _user(state, ref)
            events: list[Event] = []
            if admin is not None and admin != user.is_admin:
                if not admin and _admins(state) == 1:
                    raise Conflict("the last admin cannot stop being one")
                events.append(UserAdminChanged(at=now, user_id=user.id, is_admin=admin))
            if hashed is not None:
                _check_password_hash(hashed)
                events.append(
                    UserPasswordChanged(at=now, user_id=user.id, password_hash=hashed)
                )
            return events
        case DeleteUser(user=ref):
            user = _user(state, ref)
            if user.is_admin and _admins(state) == 1:
                raise Conflict("the last admin cannot be deleted")
            return [UserDeleted(at=now, user_id=user.id, username=user.username)]
    raise InvalidInput(f"unknown command {type(command).__name__}")


def _decide_member(
    state: SystemState, command: SetMember | RemoveMember
) -> list[Event]:
    now = utcnow()
    app = _app(state, command.app)
    user = _user(state, command.user)
    member = state.member(app.id, user.id)
    leaves_no_owner = (
        member is not None and member.role == "owner" and _owners(state, app.id) == 1
    )
    match command:
        case SetMember(role=role):
            role = Role(role)
            if member is not None and member.role == role:
                return []
            if leaves_no_owner:
                raise Conflict(f"app {app.slug!r} must keep at least one owner")
            return [MemberSet(at=now, app_id=app.id, user_id=user.id, role=role.value)]
        case RemoveMember():
            if member is None:
                raise NotFound(f"{user.username!r} is not a member of {app.slug!r}")
            if leaves_no_owner:
                raise Conflict(f"app {app.slug!r} must keep at least one owner")
            return [MemberRemoved(at=now, app_id=app.id, user_id=user.id)]
    raise InvalidInput(f"unknown command {type(command).__name__}")


def _decide_key(
    state: SystemState, command: CreateApiKey | RevokeApiKey
) -> list[Event]:
    now = utcnow()
    match command:
        case CreateApiKey():
            user = _user(state, command.user)
            scopes = parse_scopes(command.scopes)
            if not _HEX64.fullmatch(command.secret_hash):
                raise InvalidInput("secret_hash must be a hex SHA-256")
            app_id = None
            if command.app is not None:
                app = state.app(command.app)
                if app is None or not (user.is_admin or state.member(app.id, user.id)):
                    raise NotFound(f"no app {command.app[:80]!r} that you can access")
                app_id = app.id
            return [
                ApiKeyCreated(
                    at=now,
                    key_id=str(uuid.uuid4()),
                    user_id=user.id,
                    name=command.name,
                    prefix=command.prefix,
                    secret_hash=command.secret_hash,
                    scopes=tuple(sorted(scopes)),
                    app_id=app_id,
                )
            ]
        case RevokeApiKey(key=key_id, user=owner):
            key = state.keys.get(key_id)
            if key is None or (owner is not None and key.user_id != owner):
                raise NotFound(f"no API key {key_id[:80]!r}")
            if key.revoked_at is not None:
                return []
            return [ApiKeyRevoked(at=now, key_id=key.id)]
    raise InvalidInput(f"unknown command {type(command).__name__}")


def user_record(user: UserInfo) -> UserRecord:
    return UserRecord(
        id=user.id,
        username=user.username,
        admin=user.is_admin,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


def key_record(key: KeyInfo) -> KeyRecord:
    return KeyRecord(
        id=key.id,
        user_id=key.user_id,
        name=key.name,
        prefix=key.prefix,
        scopes=list(key.scopes),
        app_id=key.app_id,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


def identity_answer(
    state: SystemState, command: IdentityCommand, recorded: list[Event]
) -> UserRecord | MemberRecord | KeyRecord | None:
    """The API's answer to ``command`` once ``recorded`` are applied: the thing now."""
    match command:
        case CreateUser(username=username):
            user = state.user(username)
            return None if user is None else user_record(user)
        case UpdateUser(user=ref):
            user = state.user(ref)
            return None if user is None else user_record(user)
        case SetMember(app=app_ref, user=user_ref):
            return _member_answer(state, app_ref, user_ref)
        case CreateApiKey():
            created = [e for e in recorded if isinstance(e, ApiKeyCreated)]
            key = state.keys.get(created[-1].key_id) if created else None
            return None if key is None else key_record(key)
        case RevokeApiKey(key=key_id):
            key = state.keys.get(key_id)
            return None if key is None else key_record(key)
    return None


def _member_answer(
    state: SystemState, app_ref: str, user_ref: str
) -> MemberRecord | None:
    app, user = state.app(app_ref), state.user(user_ref)
    member = None if app is None or user is None else state.member(app.id, user.id)
    if member is None or app is None or user is None:
        return None
    return MemberRecord(
        app_id=app.id,
        user_id=user.id,
        username=user.username,
        role=member.role,
        created_at=member.created_at,
        updated_at=member.updated_at,
    )
