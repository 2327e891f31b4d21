"""The capability model, pure: the role and scope tables as SPEC.md §6 states them."""

from __future__ import annotations

import pytest

from picloud.domain.access import (
    ALL_CAPABILITIES,
    ALL_SCOPES,
    SCRIPT_DEFAULT,
    Capability,
    KeyGrant,
    Principal,
    Role,
    Scope,
    capabilities,
    parse_scopes,
    script_capabilities,
)
from picloud.domain.sdk_ops import SDK_NEEDS, check_sdk_call
from picloud.errors import InvalidInput, SdkCallError

C = Capability
VIEWER = {
    C.APP_READ,
    C.SCRIPT_READ,
    C.KV_READ,
    C.DOCS_READ,
    C.TRIGGERS_READ,
    C.DEAD_LETTERS_READ,
    C.EVENTS_READ,
}
EDITOR = VIEWER | {
    C.SCRIPT_WRITE,
    C.KV_WRITE,
    C.DOCS_WRITE,
    C.TRIGGERS_MANAGE,
    C.DEAD_LETTERS_MANAGE,
}
OWNER = EDITOR | {C.APP_WRITE, C.APP_DELETE, C.MEMBERS_MANAGE}

APP = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"


def person(*, admin: bool = False) -> Principal:
    return Principal(user_id="u1", username="ann", is_admin=admin)


def key(*scopes: Scope, admin: bool = False, app_id: str | None = None) -> Principal:
    grant = KeyGrant(id="k1", scopes=frozenset(scopes), app_id=app_id)
    return Principal(user_id="u1", username="ann", is_admin=admin, key=grant)


@pytest.mark.parametrize(
    ("role", "expected"),
    [(Role.VIEWER, VIEWER), (Role.EDITOR, EDITOR), (Role.OWNER, OWNER), (None, set())],
)
def test_roles_grant_their_table_on_their_app(
    role: Role | None, expected: set[Capability]
) -> None:
    assert capabilities(person(), app_id=APP, role=role) == expected


def test_outside_apps_a_person_may_sign_in_manage_their_account_and_create_apps() -> (
    None
):
    assert capabilities(person(), app_id=None) == {
        C.SIGNED_IN,
        C.ACCOUNT,
        C.APP_CREATE,
    }


def test_an_admin_holds_everything_outside_apps_and_an_owners_set_on_any_app() -> None:
    assert capabilities(person(admin=True), app_id=None) == ALL_CAPABILITIES
    assert capabilities(person(admin=True), app_id=APP) == OWNER
    assert capabilities(person(admin=True), app_id="no-such-app") == OWNER


SCOPES: dict[Scope, set[Capability]] = {
    Scope.APP_READ: {C.APP_READ},
    Scope.APP_WRITE: {C.APP_READ, C.APP_WRITE, C.APP_DELETE},
    Scope.SCRIPT_READ: {C.SCRIPT_READ, C.KV_READ, C.DOCS_READ},
    Scope.SCRIPT_WRITE: {
        C.SCRIPT_READ,
        C.KV_READ,
        C.DOCS_READ,
        C.SCRIPT_WRITE,
        C.KV_WRITE,
        C.DOCS_WRITE,
    },
    Scope.TRIGGERS_MANAGE: {C.TRIGGERS_READ, C.TRIGGERS_MANAGE},
    Scope.DEAD_LETTERS_MANAGE: {C.DEAD_LETTERS_READ, C.DEAD_LETTERS_MANAGE},
    Scope.EVENTS_READ: {C.EVENTS_READ},
    Scope.ADMIN: {C.MEMBERS_MANAGE, C.APP_READ},  # on an app; users outside
}


@pytest.mark.parametrize("scope", list(Scope))
def test_each_scope_grants_its_table_on_an_app(scope: Scope) -> None:
    assert capabilities(key(scope, admin=True), app_id=APP) == SCOPES[scope]


def test_there_are_the_seven_scopes_of_the_spec_and_admin_apart() -> None:
    assert {s.value for s in Scope} == {*ALL_SCOPES, "admin"}
    assert {s.value for s in ALL_SCOPES} == {
        "app:read",
        "app:write",
        "script:read",
        "script:write",
        "triggers:manage",
        "dead_letters:manage",
        "events:read",
    }


def test_a_key_never_exceeds_its_user() -> None:
    viewer_key = key(*Scope)
    assert capabilities(viewer_key, app_id=APP, role=Role.VIEWER) == VIEWER
    assert capabilities(viewer_key, app_id=APP, role=None) == set()
    assert capabilities(key(*Scope), app_id=None) == {C.SIGNED_IN, C.APP_CREATE}


def test_a_key_never_holds_identity_grants_even_an_admins_with_every_scope() -> None:
    full = key(*ALL_SCOPES, admin=True)
    assert capabilities(full, app_id=APP) == OWNER - {C.MEMBERS_MANAGE}
    outside = capabilities(full, app_id=None)
    assert not outside & {C.ACCOUNT, C.USERS_MANAGE, C.MEMBERS_MANAGE}
    assert {C.APP_CREATE, C.EVENTS_READ, C.SIGNED_IN} <= outside


def test_only_the_admin_scope_manages_users_and_members_and_only_as_its_user() -> None:
    automation = key(Scope.ADMIN, admin=True)
    assert capabilities(automation, app_id=None) == {
        C.SIGNED_IN,
        C.USERS_MANAGE,
        C.MEMBERS_MANAGE,
        C.APP_READ,
    }
    assert C.MEMBERS_MANAGE in capabilities(automation, app_id=APP)
    assert C.ACCOUNT not in capabilities(key(*Scope, admin=True), app_id=None)
    mere_user = key(Scope.ADMIN)  # the scope adds nothing its user lacks
    assert C.USERS_MANAGE not in capabilities(mere_user, app_id=None)
    owner_key = capabilities(mere_user, app_id=APP, role=Role.OWNER)
    assert owner_key == {C.MEMBERS_MANAGE, C.APP_READ}


def test_a_key_bound_to_one_app_has_nothing_on_another_and_little_outside() -> None:
    bound = key(*ALL_SCOPES, admin=True, app_id=APP)
    assert capabilities(bound, app_id=APP) == OWNER - {C.MEMBERS_MANAGE}
    assert capabilities(bound, app_id=OTHER, role=Role.OWNER) == set()
    assert capabilities(bound, app_id=None) == {C.SIGNED_IN}


def test_app_create_needs_app_write_on_an_unbound_key() -> None:
    assert C.APP_CREATE in capabilities(key(Scope.APP_WRITE), app_id=None)
    assert C.APP_CREATE not in capabilities(key(Scope.APP_READ), app_id=None)


def test_parse_scopes_refuses_unknown_and_empty() -> None:
    assert parse_scopes(["app:read", "app:read"]) == {Scope.APP_READ}
    with pytest.raises(InvalidInput, match="unknown scope"):
        parse_scopes(["app:everything"])
    with pytest.raises(InvalidInput, match="at least one"):
        parse_scopes([])


def test_scripts_run_with_their_apps_data_only_by_default() -> None:
    assert (
        script_capabilities(None)
        == SCRIPT_DEFAULT
        == {
            C.KV_READ,
            C.KV_WRITE,
            C.DOCS_READ,
            C.DOCS_WRITE,
            C.HTTP_FETCH,  # within the app's fetch allowlist, public hosts only
            C.SECRETS_READ,  # its own app's secrets
        }
    )
    granted = script_capabilities(["kv:read", "dead_letters:manage"])
    assert granted == {C.KV_READ, C.DEAD_LETTERS_MANAGE}
    for bad in ("users:manage", "app:delete", "members:manage", "nonsense"):
        with pytest.raises(InvalidInput):
            script_capabilities([bad])


def test_every_sdk_operation_is_checked() -> None:
    ops = [
        "kv.get",
        "kv.set",
        "kv.has",
        "kv.delete",
        "kv.list",
        "docs.create",
        "docs.get",
        "docs.find",
        "docs.find_one",
        "docs.update",
        "docs.delete",
        "docs.list",
        "dead_letters.list",
        "dead_letters.replay",
        "dead_letters.resolve",
        "http.fetch",
        "secrets.get",
    ]
    assert set(SDK_NEEDS) == set(ops)
    for op in ops:
        check_sdk_call(frozenset(SDK_NEEDS.values()), op)
    check_sdk_call(SCRIPT_DEFAULT, "kv.set")
    with pytest.raises(SdkCallError, match="dead_letters:manage"):
        check_sdk_call(SCRIPT_DEFAULT, "dead_letters.replay")
    with pytest.raises(SdkCallError, match="kv:write"):
        check_sdk_call(frozenset({C.KV_READ}), "kv.set")
    with pytest.raises(SdkCallError):
        check_sdk_call(frozenset(ALL_CAPABILITIES), "os.execute")
