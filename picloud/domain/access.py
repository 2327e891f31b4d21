"""The capability model: who may do what to which app. Pure; no I/O.

Every admin endpoint declares the one :class:`Capability` it needs; every SDK
call a script makes needs one too. :func:`capabilities` is the only place that
decides what a principal holds, from three facts: the user's instance-admin
flag, the user's :class:`Role` in the app, and — for an API key — the key's
scopes and the app it is bound to.

Roles (per app; instance admins hold the owner's set on every app)::

    viewer  APP_READ SCRIPT_READ KV_READ DOCS_READ TRIGGERS_READ
            DEAD_LETTERS_READ EVENTS_READ
    editor  viewer + SCRIPT_WRITE KV_WRITE DOCS_WRITE TRIGGERS_MANAGE
            DEAD_LETTERS_MANAGE
    owner   editor + APP_WRITE APP_DELETE MEMBERS_MANAGE

Outside any app: every principal holds SIGNED_IN; a signed-in person (not a
key) also ACCOUNT and APP_CREATE; an instance admin holds every capability.

API key scopes (SPEC.md §6) grant::

    app:read              APP_READ
    app:write             APP_READ APP_WRITE APP_DELETE APP_CREATE
    script:read           SCRIPT_READ KV_READ DOCS_READ
    script:write          script:read + SCRIPT_WRITE KV_WRITE DOCS_WRITE
    triggers:manage       TRIGGERS_READ TRIGGERS_MANAGE
    dead_letters:manage   DEAD_LETTERS_READ DEAD_LETTERS_MANAGE
    events:read           EVENTS_READ
    admin                 USERS_MANAGE MEMBERS_MANAGE APP_READ (for automation;
                          never in "every scope": asked for by name)

Guarantees of :func:`capabilities`:
- a key never exceeds its user: its set is the user's set intersected with
  what its scopes grant;
- a key bound to app A holds nothing on any other app, and outside apps only
  SIGNED_IN (so it can neither create apps nor read the instance's events);
- ACCOUNT (one's own keys and password) is never held by a key, so revoking
  a leaked key ends the leak; MEMBERS_MANAGE and USERS_MANAGE only by a key
  with the ``admin`` scope (and then, as ever, only what its user holds:
  only an instance admin's key manages users).

Which capability an endpoint declares: reads of a thing need its ``*_READ``,
changes its ``*_WRITE``/``*_MANAGE``. Routes are script configuration
(SCRIPT_*); executions and the members list are APP_READ; the instance-wide
event log is EVENTS_READ outside apps (instance admins), one app's stream
EVENTS_READ on that app. An endpoint that only needs a signed-in caller and
filters by what the caller may read (the apps list) declares SIGNED_IN.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

import msgspec

from picloud.errors import InvalidInput

__all__ = [
    "ALL_CAPABILITIES",
    "ALL_SCOPES",
    "ROLE_CAPABILITIES",
    "SCOPE_CAPABILITIES",
    "SCRIPT_DEFAULT",
    "SCRIPT_GRANTABLE",
    "Capability",
    "KeyGrant",
    "Principal",
    "Role",
    "Scope",
    "capabilities",
    "parse_scopes",
    "script_capabilities",
]


class Capability(StrEnum):
    """One thing an endpoint or SDK call needs; values are stable API strings."""

    SIGNED_IN = "signed_in"
    ACCOUNT = "account"
    APP_CREATE = "app:create"
    APP_READ = "app:read"
    APP_WRITE = "app:write"
    APP_DELETE = "app:delete"
    SCRIPT_READ = "script:read"
    SCRIPT_WRITE = "script:write"
    KV_READ = "kv:read"
    KV_WRITE = "kv:write"
    DOCS_READ = "docs:read"
    DOCS_WRITE = "docs:write"
    TRIGGERS_READ = "triggers:read"
    TRIGGERS_MANAGE = "triggers:manage"
    DEAD_LETTERS_READ = "dead_letters:read"
    DEAD_LETTERS_MANAGE = "dead_letters:manage"
    EVENTS_READ = "events:read"
    MEMBERS_MANAGE = "members:manage"
    USERS_MANAGE = "users:manage"
    HTTP_FETCH = "http:fetch"
    """A script's outbound HTTP (``http.fetch``); no admin endpoint needs it."""
    SECRETS_READ = "secrets:read"
    """A script's reads of its app's secrets; no admin endpoint needs it."""


class Role(StrEnum):
    """A user's role in one app."""

    VIEWER = "viewer"
    EDITOR = "editor"
    OWNER = "owner"


class Scope(StrEnum):
    """The seven API key scopes of SPEC.md §6, and ``admin`` for automation."""

    APP_READ = "app:read"
    APP_WRITE = "app:write"
    SCRIPT_READ = "script:read"
    SCRIPT_WRITE = "script:write"
    TRIGGERS_MANAGE = "triggers:manage"
    DEAD_LETTERS_MANAGE = "dead_letters:manage"
    EVENTS_READ = "events:read"
    ADMIN = "admin"


C = Capability
ALL_CAPABILITIES = frozenset(Capability)
ALL_SCOPES = frozenset(Scope) - {Scope.ADMIN}
"""Every scope a key can have without asking for ``admin`` by name."""

_VIEWER = frozenset(
    {
        C.APP_READ,
        C.SCRIPT_READ,
        C.KV_READ,
        C.DOCS_READ,
        C.TRIGGERS_READ,
        C.DEAD_LETTERS_READ,
        C.EVENTS_READ,
    }
)
_EDITOR = _VIEWER | {
    C.SCRIPT_WRITE,
    C.KV_WRITE,
    C.DOCS_WRITE,
    C.TRIGGERS_MANAGE,
    C.DEAD_LETTERS_MANAGE,
}
_OWNER = _EDITOR | {C.APP_WRITE, C.APP_DELETE, C.MEMBERS_MANAGE}

ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.VIEWER: _VIEWER,
    Role.EDITOR: _EDITOR,
    Role.OWNER: _OWNER,
}

_SCRIPT_READ = frozenset({C.SCRIPT_READ, C.KV_READ, C.DOCS_READ})
SCOPE_CAPABILITIES: dict[Scope, frozenset[Capability]] = {
    Scope.APP_READ: frozenset({C.APP_READ}),
    Scope.APP_WRITE: frozenset({C.APP_READ, C.APP_WRITE, C.APP_DELETE, C.APP_CREATE}),
    Scope.SCRIPT_READ: _SCRIPT_READ,
    Scope.SCRIPT_WRITE: _SCRIPT_READ | {C.SCRIPT_WRITE, C.KV_WRITE, C.DOCS_WRITE},
    Scope.TRIGGERS_MANAGE: frozenset({C.TRIGGERS_READ, C.TRIGGERS_MANAGE}),
    Scope.DEAD_LETTERS_MANAGE: frozenset({C.DEAD_LETTERS_READ, C.DEAD_LETTERS_MANAGE}),
    Scope.EVENTS_READ: frozenset({C.EVENTS_READ}),
    Scope.ADMIN: frozenset({C.USERS_MANAGE, C.MEMBERS_MANAGE, C.APP_READ}),
}

_PERSON = frozenset({C.SIGNED_IN, C.ACCOUNT, C.APP_CREATE})
_NEVER_BY_KEY = frozenset({C.ACCOUNT})


class KeyGrant(msgspec.Struct, frozen=True, kw_only=True):
    """What an API key adds to its user's identity: scopes and an optional app."""

    id: str
    scopes: frozenset[Scope]
    app_id: str | None = None


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated caller: a user, acting in person or through one key."""

    user_id: str
    username: str
    is_admin: bool = False
    key: KeyGrant | None = None
    """None: a signed-in person (a dashboard session)."""

    @property
    def actor(self) -> str:
        """The ``EventMeta.actor`` of what this principal causes."""
        return f"key:{self.key.id}" if self.key else f"user:{self.user_id}"


def capabilities(
    principal: Principal, *, app_id: str | None, role: Role | None = None
) -> frozenset[Capability]:
    """What ``principal`` may do on ``app_id`` (None: outside any app).

    ``role`` is the user's membership role in that app, None for none. An
    ``app_id`` naming no existing app is fine: only an instance admin holds
    anything there (and then learns from the handler that it does not exist).
    """
    own = _user_capabilities(principal.is_admin, app_id=app_id, role=role)
    key = principal.key
    if key is None:
        return own
    if key.app_id is not None and key.app_id != app_id:
        return own & {C.SIGNED_IN} if app_id is None else frozenset()
    granted = {C.SIGNED_IN}.union(*(SCOPE_CAPABILITIES[s] for s in key.scopes))
    return (own & granted) - _NEVER_BY_KEY


def _user_capabilities(
    is_admin: bool, *, app_id: str | None, role: Role | None
) -> frozenset[Capability]:
    if is_admin:
        return ALL_CAPABILITIES if app_id is None else _OWNER
    if app_id is None:
        return _PERSON
    return ROLE_CAPABILITIES[role] if role is not None else frozenset()


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Scopes from their names; raises InvalidInput naming an unknown one."""
    scopes = set()
    for value in values:
        try:
            scopes.add(Scope(value))
        except ValueError:
            known = " ".join(sorted(Scope))
            raise InvalidInput(
                f"unknown scope {value[:40]!r}; the scopes are: {known}"
            ) from None
    if not scopes:
        raise InvalidInput("give at least one scope")
    return frozenset(scopes)


# -- scripts ------------------------------------------------------------------------

SCRIPT_DEFAULT = frozenset(
    {C.KV_READ, C.KV_WRITE, C.DOCS_READ, C.DOCS_WRITE, C.HTTP_FETCH, C.SECRETS_READ}
)
"""What a script runs with when its route or trigger configures nothing (public
routes): its own app's KV, documents and secrets, and outbound HTTP within
the app's fetch allowlist; nothing else."""

SCRIPT_GRANTABLE = SCRIPT_DEFAULT | {C.DEAD_LETTERS_READ, C.DEAD_LETTERS_MANAGE}
"""What a route's or trigger's configuration may grant a script. Always on the
invoking app only: the app comes from the invocation, never from the script."""


def script_capabilities(configured: Iterable[str] | None) -> frozenset[Capability]:
    """The capabilities a route's or trigger's configuration gives its script.

    None (nothing configured) is :data:`SCRIPT_DEFAULT`. Raises InvalidInput
    for an unknown capability or one outside :data:`SCRIPT_GRANTABLE`, so a
    bad configuration is refused when it is saved, not when the script runs.
    """
    if configured is None:
        return SCRIPT_DEFAULT
    granted = set()
    for value in configured:
        try:
            capability = Capability(value)
        except ValueError:
            raise InvalidInput(f"unknown capability {value[:40]!r}") from None
        if capability not in SCRIPT_GRANTABLE:
            raise InvalidInput(f"a script cannot be granted {capability.value!r}")
        granted.add(capability)
    return frozenset(granted)
