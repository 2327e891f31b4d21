"""Events of the ``system`` stream: apps, users, memberships and API keys.

Secrets never enter an event: users carry only their argon2 password hash,
keys only the SHA-256 of the secret and its visible prefix.
"""

from __future__ import annotations

from picloud.events._base import Event

__all__ = [
    "ApiKeyCreated",
    "ApiKeyRevoked",
    "AppCreated",
    "AppDeleted",
    "AppUpdated",
    "IdentityEvent",
    "MemberRemoved",
    "MemberSet",
    "SecretDeleted",
    "SecretEvent",
    "SecretSet",
    "SystemEvent",
    "UserAdminChanged",
    "UserCreated",
    "UserDeleted",
    "UserPasswordChanged",
]


class AppCreated(Event, frozen=True, tag="app.created.v1"):
    app_id: str
    slug: str
    name: str


class AppUpdated(Event, frozen=True, tag="app.updated.v1"):
    """The app's new slug and name (both given, even when one is unchanged)."""

    app_id: str
    slug: str
    name: str


class AppDeleted(Event, frozen=True, tag="app.deleted.v1"):
    """The app is gone; so are its memberships (keys bound to it stay, inert)."""

    app_id: str
    slug: str


class UserCreated(Event, frozen=True, tag="user.created.v1"):
    user_id: str
    username: str
    password_hash: str
    """argon2id encoded hash; never the password."""
    is_admin: bool = False


class UserPasswordChanged(Event, frozen=True, tag="user.password_changed.v1"):
    """A new password hash; the user's sessions end with it."""

    user_id: str
    password_hash: str


class UserAdminChanged(Event, frozen=True, tag="user.admin_changed.v1"):
    user_id: str
    is_admin: bool


class UserDeleted(Event, frozen=True, tag="user.deleted.v1"):
    """The user, their memberships, keys and sessions are gone."""

    user_id: str
    username: str


class MemberSet(Event, frozen=True, tag="member.set.v1"):
    """The user now has ``role`` (viewer, editor, owner) in the app."""

    app_id: str
    user_id: str
    role: str


class MemberRemoved(Event, frozen=True, tag="member.removed.v1"):
    app_id: str
    user_id: str


class ApiKeyCreated(Event, frozen=True, tag="api_key.created.v1"):
    key_id: str
    user_id: str
    name: str
    prefix: str
    """The first characters of the secret, shown in lists; not enough to use it."""
    secret_hash: str
    """Hex SHA-256 of the secret (a 256-bit random value: no salt needed)."""
    scopes: tuple[str, ...]
    app_id: str | None = None
    """The one app the key may act on; None for every app its user may."""


class ApiKeyRevoked(Event, frozen=True, tag="api_key.revoked.v1"):
    key_id: str


IdentityEvent = (
    UserCreated
    | UserPasswordChanged
    | UserAdminChanged
    | UserDeleted
    | MemberSet
    | MemberRemoved
    | ApiKeyCreated
    | ApiKeyRevoked
)


class SecretSet(Event, frozen=True, tag="secret.set.v1"):
    """An app's secret ``name`` holds a new value. Never the value in clear:
    AES-256-GCM of it (nonce first, base64) under the key ``key_id`` names,
    bound to its app and name (the associated data), so a ciphertext copied
    to another app or name does not open."""

    app_id: str
    name: str
    ciphertext: str
    key_id: str


class SecretDeleted(Event, frozen=True, tag="secret.deleted.v1"):
    app_id: str
    name: str


SecretEvent = SecretSet | SecretDeleted
SystemEvent = AppCreated | AppUpdated | AppDeleted | SecretEvent | IdentityEvent
