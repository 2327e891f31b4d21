"""The system stream's state, folded by ``evolve_system`` (pure)."""

from __future__ import annotations

import msgspec

from picloud.events import (
    ApiKeyCreated,
    ApiKeyRevoked,
    AppCreated,
    AppDeleted,
    AppUpdated,
    Event,
    MemberRemoved,
    MemberSet,
    UserAdminChanged,
    UserCreated,
    UserDeleted,
    UserPasswordChanged,
)
from picloud.events.app import KvSet
from picloud.events.system_state import SystemState, evolve_system
from tests.events.helpers import APP, AT, fold_system, later, recorded

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


def user(user_id: str, name: str, *, admin: bool = False) -> UserCreated:
    return UserCreated(
        at=AT, user_id=user_id, username=name, password_hash=HASH, is_admin=admin
    )


def key(key_id: str, user_id: str, app_id: str | None = None) -> ApiKeyCreated:
    return ApiKeyCreated(
        at=AT,
        key_id=key_id,
        user_id=user_id,
        name="ci",
        prefix="pc_abc",
        secret_hash="0" * 64,
        scopes=("app:read",),
        app_id=app_id,
    )


SHOP: list[Event] = [AppCreated(at=AT, app_id=APP, slug="shop", name="Shop")]


def test_every_event_moves_the_version_even_one_of_another_stream() -> None:
    state = fold_system(SHOP)
    assert state.version == 1
    data = KvSet(at=AT, app_id=APP, collection="c", key="k", value=msgspec.Raw(b"1"))
    after = evolve_system(state, recorded(data, 7, stream=f"app-{APP}"))
    assert after.version == 7
    assert after.set(version=1) == state


def test_an_app_is_found_by_id_or_slug() -> None:
    state = fold_system(SHOP)
    app = state.app(APP)
    assert app is not None
    assert (app.slug, app.name, app.created_at, app.updated_at) == (
        "shop",
        "Shop",
        AT,
        AT,
    )
    assert state.app("shop") == app
    assert state.app("nope") is None


def test_renaming_an_app_frees_its_old_slug_and_keeps_its_creation_time() -> None:
    state = fold_system(
        [*SHOP, AppUpdated(at=later(5), app_id=APP, slug="store", name="Store")]
    )
    assert state.app("shop") is None
    app = state.app("store")
    assert app is not None
    assert (app.id, app.name, app.created_at, app.updated_at) == (
        APP,
        "Store",
        AT,
        later(5),
    )
    assert dict(state.slugs) == {"store": APP}


def test_a_deleted_app_takes_its_memberships_but_not_keys_bound_to_it() -> None:
    state = fold_system(
        [
            *SHOP,
            user("u1", "ann"),
            MemberSet(at=AT, app_id=APP, user_id="u1", role="owner"),
            key("k1", "u1", app_id=APP),
            AppDeleted(at=AT, app_id=APP, slug="shop"),
        ]
    )
    assert state.app(APP) is None
    assert not state.slugs
    assert APP not in state.members
    assert state.member(APP, "u1") is None
    assert state.keys["k1"].app_id == APP


def test_usernames_are_looked_up_case_insensitively_and_by_id() -> None:
    state = fold_system([user("u1", "Ann")])
    found = state.user("u1")
    assert found is not None
    assert found.username == "Ann"
    assert state.user("ann") == state.user("ANN") == found
    assert dict(state.usernames) == {"ann": "u1"}
    assert state.user("bob") is None


def test_a_password_change_and_an_admin_change_touch_the_user() -> None:
    state = fold_system(
        [
            user("u1", "ann"),
            UserPasswordChanged(at=later(1), user_id="u1", password_hash=HASH),
        ]
    )
    assert state.users["u1"].updated_at == later(1)
    assert state.users["u1"].created_at == AT
    state = fold_system(
        [UserAdminChanged(at=later(2), user_id="u1", is_admin=True)], state
    )
    assert state.users["u1"].is_admin
    assert state.users["u1"].updated_at == later(2)


def test_a_membership_keeps_its_creation_time_when_its_role_changes() -> None:
    state = fold_system(
        [
            *SHOP,
            user("u1", "ann"),
            MemberSet(at=AT, app_id=APP, user_id="u1", role="viewer"),
            MemberSet(at=later(9), app_id=APP, user_id="u1", role="editor"),
        ]
    )
    member = state.member(APP, "u1")
    assert member is not None
    assert (member.role, member.created_at, member.updated_at) == (
        "editor",
        AT,
        later(9),
    )
    state = fold_system([MemberRemoved(at=AT, app_id=APP, user_id="u1")], state)
    assert state.member(APP, "u1") is None
    assert state.member("no-such-app", "u1") is None


def test_a_key_is_listed_without_its_hash_and_revoked_with_a_time() -> None:
    state = fold_system([user("u1", "ann"), key("k1", "u1")])
    listed = state.keys["k1"]
    assert (listed.user_id, listed.prefix, listed.scopes, listed.app_id) == (
        "u1",
        "pc_abc",
        ("app:read",),
        None,
    )
    assert "0" * 64 not in repr(listed)
    assert listed.revoked_at is None
    state = fold_system([ApiKeyRevoked(at=later(3), key_id="k1")], state)
    assert state.keys["k1"].revoked_at == later(3)


def test_a_deleted_user_loses_memberships_everywhere_and_only_their_own_keys() -> None:
    other = "22222222-2222-4222-8222-222222222222"
    state = fold_system(
        [
            *SHOP,
            AppCreated(at=AT, app_id=other, slug="blog", name="Blog"),
            user("u1", "Ann"),
            user("u2", "bob"),
            MemberSet(at=AT, app_id=APP, user_id="u1", role="owner"),
            MemberSet(at=AT, app_id=other, user_id="u1", role="viewer"),
            MemberSet(at=AT, app_id=other, user_id="u2", role="owner"),
            key("k1", "u1"),
            key("k2", "u2"),
            UserDeleted(at=AT, user_id="u1", username="Ann"),
        ]
    )
    assert state.user("u1") is None
    assert state.user("ann") is None
    assert all("u1" not in roles for roles in state.members.values())
    assert state.member(other, "u2") is not None
    assert set(state.keys) == {"k2"}


def test_evolving_never_changes_the_state_it_was_given() -> None:
    empty = SystemState()
    fold_system([*SHOP, user("u1", "ann")], empty)
    assert empty == SystemState()
    assert empty.version == 0
