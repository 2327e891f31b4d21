"""The system stream's state, evolved from its events (pure, pyrsistent).

The state holds what the ControlPlane needs to decide commands: apps, users,
memberships and keys. It never holds a secret or a hash of one.
"""

from __future__ import annotations

from datetime import datetime
from typing import assert_never

from pyrsistent import PClass, field, pmap
from pyrsistent.typing import PMap

from picloud.events._base import RecordedEvent
from picloud.events.system import (
    ApiKeyCreated,
    ApiKeyRevoked,
    AppCreated,
    AppDeleted,
    AppUpdated,
    IdentityEvent,
    MemberRemoved,
    MemberSet,
    SecretDeleted,
    SecretSet,
    SystemEvent,
    UserAdminChanged,
    UserCreated,
    UserDeleted,
    UserPasswordChanged,
)

__all__ = [
    "AppEntry",
    "KeyInfo",
    "MemberInfo",
    "SecretInfo",
    "SystemState",
    "UserInfo",
    "evolve_system",
]


class AppEntry(PClass):
    id: str = field(type=str, mandatory=True)
    slug: str = field(type=str, mandatory=True)
    name: str = field(type=str, mandatory=True)
    created_at: datetime = field(type=datetime, mandatory=True)
    updated_at: datetime = field(type=datetime, mandatory=True)


class UserInfo(PClass):
    id: str = field(type=str, mandatory=True)
    username: str = field(type=str, mandatory=True)
    is_admin: bool = field(type=bool, mandatory=True)
    created_at: datetime = field(type=datetime, mandatory=True)
    updated_at: datetime = field(type=datetime, mandatory=True)


class MemberInfo(PClass):
    role: str = field(type=str, mandatory=True)
    created_at: datetime = field(type=datetime, mandatory=True)
    updated_at: datetime = field(type=datetime, mandatory=True)


class KeyInfo(PClass):
    id: str = field(type=str, mandatory=True)
    user_id: str = field(type=str, mandatory=True)
    name: str = field(type=str, mandatory=True)
    prefix: str = field(type=str, mandatory=True)
    scopes: tuple[str, ...] = field(type=tuple, mandatory=True)
    app_id: str | None = field(type=(str, type(None)), initial=None)
    created_at: datetime = field(type=datetime, mandatory=True)
    revoked_at: datetime | None = field(type=(datetime, type(None)), initial=None)


class SecretInfo(PClass):
    """That an app's secret exists, and since when: never its value."""

    created_at: datetime = field(type=datetime, mandatory=True)
    updated_at: datetime = field(type=datetime, mandatory=True)


class SystemState(PClass):
    """The system stream at ``version``: apps, users, roles and keys by id."""

    version: int = field(type=int, initial=0)
    apps: PMap[str, AppEntry] = field(initial=pmap())
    slugs: PMap[str, str] = field(initial=pmap())
    users: PMap[str, UserInfo] = field(initial=pmap())
    usernames: PMap[str, str] = field(initial=pmap())
    members: PMap[str, PMap[str, MemberInfo]] = field(initial=pmap())
    """app id → user id → membership."""
    keys: PMap[str, KeyInfo] = field(initial=pmap())
    secrets: PMap[str, PMap[str, SecretInfo]] = field(initial=pmap())
    """app id → secret name → when it was set."""

    def app(self, id_or_slug: str) -> AppEntry | None:
        app: AppEntry | None = self.apps.get(id_or_slug)
        if app is None and id_or_slug in self.slugs:
            app = self.apps[self.slugs[id_or_slug]]
        return app

    def user(self, id_or_name: str) -> UserInfo | None:
        user: UserInfo | None = self.users.get(id_or_name)
        if user is None and id_or_name.lower() in self.usernames:
            user = self.users[self.usernames[id_or_name.lower()]]
        return user

    def member(self, app_id: str, user_id: str) -> MemberInfo | None:
        member: MemberInfo | None = self.members.get(app_id, pmap()).get(user_id)
        return member


def evolve_system(state: SystemState, recorded: RecordedEvent) -> SystemState:
    """The state after ``recorded``; events of other types only bump the version."""
    state = state.set(version=recorded.version)
    event = recorded.event
    if not isinstance(event, SystemEvent):
        return state
    return _apply(state, event)


def _apply(state: SystemState, event: SystemEvent) -> SystemState:
    match event:
        case AppCreated(app_id=app_id, slug=slug, name=name, at=at):
            app = AppEntry(
                id=app_id, slug=slug, name=name, created_at=at, updated_at=at
            )
            return state.set(
                apps=state.apps.set(app_id, app), slugs=state.slugs.set(slug, app_id)
            )
        case AppUpdated(app_id=app_id, slug=slug, name=name, at=at):
            old = state.apps[app_id]
            slugs = state.slugs.remove(old.slug).set(slug, app_id)
            app = old.set(slug=slug, name=name, updated_at=at)
            return state.set(apps=state.apps.set(app_id, app), slugs=slugs)
        case AppDeleted(app_id=app_id, slug=slug):
            return state.set(
                apps=state.apps.discard(app_id),
                slugs=state.slugs.discard(slug),
                members=state.members.discard(app_id),
                secrets=state.secrets.discard(app_id),
            )
        case SecretSet(app_id=app_id, name=name, at=at):
            names = state.secrets.get(app_id, pmap())
            was: SecretInfo | None = names.get(name)
            info = SecretInfo(
                created_at=at if was is None else was.created_at, updated_at=at
            )
            return state.set(secrets=state.secrets.set(app_id, names.set(name, info)))
        case SecretDeleted(app_id=app_id, name=name):
            names = state.secrets.get(app_id, pmap()).discard(name)
            return state.set(secrets=state.secrets.set(app_id, names))
        case _:
            return _apply_identity(state, event)


def _apply_identity(state: SystemState, event: IdentityEvent) -> SystemState:
    match event:
        case UserCreated() | UserPasswordChanged() | UserAdminChanged() | UserDeleted():
            return _apply_user(state, event)
        case MemberSet(app_id=app_id, user_id=user_id, role=role, at=at):
            old = state.member(app_id, user_id)
            member = MemberInfo(
                role=role,
                created_at=at if old is None else old.created_at,
                updated_at=at,
            )
            roles = state.members.get(app_id, pmap()).set(user_id, member)
            return state.set(members=state.members.set(app_id, roles))
        case MemberRemoved(app_id=app_id, user_id=user_id):
            roles = state.members.get(app_id, pmap()).discard(user_id)
            return state.set(members=state.members.set(app_id, roles))
        case ApiKeyCreated():
            key = KeyInfo(
                id=event.key_id,
                user_id=event.user_id,
                name=event.name,
                prefix=event.prefix,
                scopes=tuple(event.scopes),
                app_id=event.app_id,
                created_at=event.at,
            )
            return state.set(keys=state.keys.set(event.key_id, key))
        case ApiKeyRevoked(key_id=key_id, at=at):
            key = state.keys[key_id].set(revoked_at=at)
            return state.set(keys=state.keys.set(key_id, key))
        case _:
            assert_never(event)


def _apply_user(
    state: SystemState,
    event: UserCreated | UserPasswordChanged | UserAdminChanged | UserDeleted,
) -> SystemState:
    match event:
        case UserCreated(user_id=user_id, username=username, at=at):
            user = UserInfo(
                id=user_id,
                username=username,
                is_admin=event.is_admin,
                created_at=at,
                updated_at=at,
            )
            return state.set(
                users=state.users.set(user_id, user),
                usernames=state.usernames.set(username.lower(), user_id),
            )
        case UserPasswordChanged(user_id=user_id, at=at):
            user = state.users[user_id].set(updated_at=at)
            return state.set(users=state.users.set(user_id, user))
        case UserAdminChanged(user_id=user_id, is_admin=is_admin, at=at):
            user = state.users[user_id].set(is_admin=is_admin, updated_at=at)
            return state.set(users=state.users.set(user_id, user))
        case UserDeleted(user_id=user_id, username=username):
            members = pmap(
                {app: roles.discard(user_id) for app, roles in state.members.items()}
            )
            keys = pmap({k: v for k, v in state.keys.items() if v.user_id != user_id})
            return state.set(
                users=state.users.discard(user_id),
                usernames=state.usernames.discard(username.lower()),
                members=members,
                keys=keys,
            )
        case _:
            assert_never(event)
