"""What each endpoint *should* need, derived from its method and path alone.

This is the matrix test's independent statement of SPEC.md §6, written from
the API's shape rather than read from the code under test:

- every ``/api/`` endpoint needs a capability, except the public ones below;
- an endpoint under ``/api/v1/admin/apps/{app}/<resource>`` or
  ``/api/v1/admin/<resource>/{id}`` of an app's resource acts on that app;
- reads (GET, and POSTs that only query) need the resource's read
  capability, everything else its write capability;
- outside ``/api/``, the endpoints of ``OPS`` need what it says (``/metrics``
  is read like the instance's own event log), and the rest nothing.

An endpoint added later with a resource this table does not know fails the
matrix until its rule is added here — deliberately: someone decides.
"""

from __future__ import annotations

from picloud.domain.access import ALL_CAPABILITIES, Capability, Role, Scope

C = Capability

PUBLIC = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/api/v1/openapi.json"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/logout"),
    }
)

# Endpoints outside /api/ that are not public.
OPS: dict[tuple[str, str], Capability] = {("GET", "/metrics"): C.EVENTS_READ}

# The resources inside an app: (read capability, write capability).
APP_RESOURCES: dict[str, tuple[Capability, Capability | None]] = {
    "scripts": (C.SCRIPT_READ, C.SCRIPT_WRITE),
    "routes": (C.SCRIPT_READ, C.SCRIPT_WRITE),
    "triggers": (C.TRIGGERS_READ, C.TRIGGERS_MANAGE),
    "dead-letters": (C.DEAD_LETTERS_READ, C.DEAD_LETTERS_MANAGE),
    "kv": (C.KV_READ, C.KV_WRITE),
    "docs": (C.DOCS_READ, C.DOCS_WRITE),
    "executions": (C.APP_READ, None),
    "members": (C.APP_READ, C.MEMBERS_MANAGE),
    "events": (C.EVENTS_READ, None),
    # KV and documents as of a past position: a read of the log's history
    "state": (C.EVENTS_READ, None),
    # a dry run of another version of a script
    "what-if": (C.SCRIPT_WRITE, C.SCRIPT_WRITE),
    "settings": (C.APP_READ, C.APP_WRITE),
    "secrets": (C.SCRIPT_READ, C.SCRIPT_WRITE),
    # a folder's scripts, routes and triggers as one change set (triggers and
    # CORS need their own capabilities too, checked by the handler)
    "deploy": (C.SCRIPT_WRITE, C.SCRIPT_WRITE),
}
# Instance-wide resources under /api/v1/admin/.
INSTANCE_RESOURCES: dict[str, tuple[Capability, Capability | None]] = {
    "users": (C.USERS_MANAGE, C.USERS_MANAGE),
    "keys": (C.USERS_MANAGE, C.USERS_MANAGE),
    "events": (C.EVENTS_READ, None),
    "hosts": (C.EVENTS_READ, None),
}
# One's own account under /api/v1/auth/.
AUTH_RESOURCES: dict[str, tuple[Capability, Capability | None]] = {
    "me": (C.SIGNED_IN, None),
    "keys": (C.ACCOUNT, C.ACCOUNT),
    "password": (C.ACCOUNT, C.ACCOUNT),
}
QUERY_POSTS = frozenset({"find"})
"""Last path segments of POSTs that only read (``…/docs/{collection}/find``)."""

_APP_ITSELF = {"GET": C.APP_READ, "PATCH": C.APP_WRITE, "DELETE": C.APP_DELETE}


class Unknown(Exception):
    """The table cannot say what this endpoint needs: teach it."""


def expected(method: str, path: str) -> tuple[Capability | None, bool]:
    """The capability ``method path`` should need, and whether it acts on one app."""
    if (method, path) in PUBLIC or not path.startswith("/api/"):
        return OPS.get((method, path)), False
    parts = path.split("/")[3:]  # after "", "api", "v1"
    reads = method in ("GET", "HEAD") or (method == "POST" and parts[-1] in QUERY_POSTS)
    if parts[0] == "auth" and len(parts) > 1:
        return _pick(AUTH_RESOURCES, parts[1], reads, path), False
    if parts[0] != "admin" or len(parts) < 2:
        raise Unknown(f"{method} {path}: not under /api/v1/admin or /api/v1/auth")
    rest = parts[1:]
    if rest[0] == "events":
        # The log acts on the one app named by ?app= (or ?stream=app-{id});
        # without one, on no app: only an instance admin reads it all.
        return C.EVENTS_READ, True
    if rest[0] == "apps":
        if len(rest) == 1:
            return (C.SIGNED_IN if reads else C.APP_CREATE), False
        if len(rest) == 2:
            if method not in _APP_ITSELF:
                raise Unknown(f"{method} {path}: no rule for this method on an app")
            return _APP_ITSELF[method], True
        return _pick(APP_RESOURCES, rest[2], reads, path), True
    if rest[0] in APP_RESOURCES and len(rest) > 1:
        return _pick(APP_RESOURCES, rest[0], reads, path), True
    return _pick(INSTANCE_RESOURCES, rest[0], reads, path), False


def _pick(
    table: dict[str, tuple[Capability, Capability | None]],
    resource: str,
    reads: bool,
    path: str,
) -> Capability:
    if resource not in table:
        raise Unknown(f"{path}: resource {resource!r} has no rule in access_rules.py")
    read, write = table[resource]
    need = read if reads else write
    if need is None:
        raise Unknown(f"{path}: {resource!r} is read-only in access_rules.py")
    return need


# -- what each principal holds: the tables of SPEC.md §6 as this project reads them

VIEWER = frozenset(
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
EDITOR = VIEWER | {
    C.SCRIPT_WRITE,
    C.KV_WRITE,
    C.DOCS_WRITE,
    C.TRIGGERS_MANAGE,
    C.DEAD_LETTERS_MANAGE,
}
OWNER = EDITOR | {C.APP_WRITE, C.APP_DELETE, C.MEMBERS_MANAGE}
ROLES = {Role.VIEWER: VIEWER, Role.EDITOR: EDITOR, Role.OWNER: OWNER}
PERSON_OUTSIDE_APPS = frozenset({C.SIGNED_IN, C.ACCOUNT, C.APP_CREATE})
SCOPES: dict[Scope, frozenset[Capability]] = {
    Scope.APP_READ: frozenset({C.APP_READ}),
    Scope.APP_WRITE: frozenset({C.APP_READ, C.APP_WRITE, C.APP_DELETE, C.APP_CREATE}),
    Scope.SCRIPT_READ: frozenset({C.SCRIPT_READ, C.KV_READ, C.DOCS_READ}),
    Scope.SCRIPT_WRITE: frozenset(
        {
            C.SCRIPT_READ,
            C.KV_READ,
            C.DOCS_READ,
            C.SCRIPT_WRITE,
            C.KV_WRITE,
            C.DOCS_WRITE,
        }
    ),
    Scope.TRIGGERS_MANAGE: frozenset({C.TRIGGERS_READ, C.TRIGGERS_MANAGE}),
    Scope.DEAD_LETTERS_MANAGE: frozenset({C.DEAD_LETTERS_READ, C.DEAD_LETTERS_MANAGE}),
    Scope.EVENTS_READ: frozenset({C.EVENTS_READ}),
    # Identity changes for automation: only a key that asks for it by name.
    Scope.ADMIN: frozenset({C.USERS_MANAGE, C.MEMBERS_MANAGE, C.APP_READ}),
}
NEVER_BY_KEY = frozenset({C.ACCOUNT})


def holds(
    *,
    admin: bool,
    role: Role | None,
    in_app: bool,
    scopes: frozenset[Scope] | None = None,
    bound_elsewhere: bool = False,
) -> frozenset[Capability]:
    """What a person (``scopes`` None) or their key holds, in or outside the app."""
    if in_app:
        own = OWNER if admin else (ROLES[role] if role else frozenset())
    else:
        own = ALL_CAPABILITIES if admin else PERSON_OUTSIDE_APPS
    if scopes is None:
        return own
    if bound_elsewhere:
        return frozenset() if in_app else own & {C.SIGNED_IN}
    granted = {C.SIGNED_IN}.union(*(SCOPES[s] for s in scopes))
    return (own & granted) - NEVER_BY_KEY
