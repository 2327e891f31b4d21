"""Identity decisions: users, memberships and API keys, and their invariants."""

from __future__ import annotations

import pytest

from picloud.domain.access import Role
from picloud.domain.identity import (
    CreateApiKey,
    CreateUser,
    DeleteUser,
    RemoveMember,
    RevokeApiKey,
    SetMember,
    UpdateUser,
    decide_identity,
    identity_answer,
    key_record,
    user_record,
)
from picloud.domain.records import KeyRecord, MemberRecord, UserRecord
from picloud.domain.system import CreateApp
from picloud.errors import Conflict, InvalidInput, NotFound
from picloud.events import (
    ApiKeyCreated,
    ApiKeyRevoked,
    MemberRemoved,
    MemberSet,
    UserAdminChanged,
    UserCreated,
    UserDeleted,
    UserPasswordChanged,
)
from picloud.events.system_state import SystemState
from tests.domain.helpers import HASH, run_system, uid, with_users
from tests.events.helpers import fold_system

SECRET_HASH = "ab" * 32


def new_key(
    user: str = "ann",
    *,
    app: str | None = None,
    scopes: tuple[str, ...] = ("app:read",),
) -> CreateApiKey:
    return CreateApiKey(
        user=user,
        name="ci",
        prefix="pc_abcd",
        secret_hash=SECRET_HASH,
        scopes=scopes,
        app=app,
    )


def shop_owned_by(owner: str, *others: str) -> SystemState:
    """Users root (admin), ``owner`` and ``others``; app ``shop`` owned by ``owner``."""
    state = with_users(owner, *others)
    return run_system(
        state, CreateApp(slug="shop", name="Shop", owner=uid(state, owner))
    )


# -- users ---------------------------------------------------------------------


def test_a_user_is_created_lower_cased_with_their_hash_and_a_fresh_id() -> None:
    state = with_users()
    [event] = decide_identity(
        state, CreateUser(username="Ann", password_hash=HASH, admin=True)
    )
    assert isinstance(event, UserCreated)
    assert (event.username, event.password_hash, event.is_admin) == ("ann", HASH, True)
    [again] = decide_identity(state, CreateUser(username="bob", password_hash=HASH))
    assert isinstance(again, UserCreated)
    assert again.user_id != event.user_id
    assert not again.is_admin


@pytest.mark.parametrize("taken", ["ann", "ANN", "Ann"])
def test_usernames_are_unique_case_insensitively(taken: str) -> None:
    state = run_system(with_users(), CreateUser(username="aNN", password_hash=HASH))
    with pytest.raises(Conflict, match="'ann'"):
        decide_identity(state, CreateUser(username=taken, password_hash=HASH))


@pytest.mark.parametrize("name", ["", "-ann", "an n", "a" * 64, "änn", "ann\x00"])
def test_a_malformed_username_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="username"):
        decide_identity(with_users(), CreateUser(username=name, password_hash=HASH))


@pytest.mark.parametrize("hashed", ["hunter22", "", "$argon2i$v=19$x", "$2b$12$x"])
def test_only_argon2id_hashes_are_taken_never_a_plain_password(hashed: str) -> None:
    state = with_users("ann")
    with pytest.raises(InvalidInput, match="argon2id"):
        decide_identity(state, CreateUser(username="bob", password_hash=hashed))
    with pytest.raises(InvalidInput, match="argon2id"):
        decide_identity(state, UpdateUser(user="ann", password_hash=hashed))


def test_an_update_records_only_what_changes() -> None:
    state = with_users("ann")
    assert decide_identity(state, UpdateUser(user="ann")) == []
    assert decide_identity(state, UpdateUser(user="ann", admin=False)) == []
    events = decide_identity(
        state, UpdateUser(user="ANN", admin=True, password_hash=HASH)
    )
    assert [type(e) for e in events] == [UserAdminChanged, UserPasswordChanged]
    assert all(getattr(e, "user_id", None) == uid(state, "ann") for e in events)


def test_the_last_admin_can_neither_step_down_nor_be_deleted() -> None:
    state = with_users("ann")
    with pytest.raises(Conflict, match="last admin"):
        decide_identity(state, UpdateUser(user="root", admin=False))
    with pytest.raises(Conflict, match="last admin"):
        decide_identity(state, DeleteUser(user="root"))
    state = run_system(state, UpdateUser(user="ann", admin=True))
    state = run_system(state, UpdateUser(user="root", admin=False))
    with pytest.raises(Conflict, match="last admin"):
        decide_identity(state, DeleteUser(user="ann"))
    [event] = decide_identity(state, DeleteUser(user="root"))
    assert isinstance(event, UserDeleted)
    assert event.username == "root"


def test_commands_on_an_unknown_user_are_not_found() -> None:
    state = shop_owned_by("ann")
    for command in (
        UpdateUser(user="ghost", admin=True),
        DeleteUser(user="ghost"),
        SetMember(app="shop", user="ghost", role=Role.VIEWER),
        RemoveMember(app="shop", user="ghost"),
        new_key("ghost"),
    ):
        with pytest.raises(NotFound, match="no user 'ghost'"):
            decide_identity(state, command)


# -- memberships ---------------------------------------------------------------


def test_a_member_is_set_by_app_slug_and_username() -> None:
    state = shop_owned_by("ann", "bob")
    [event] = decide_identity(
        state, SetMember(app="shop", user="BOB", role=Role.EDITOR)
    )
    assert isinstance(event, MemberSet)
    assert (event.app_id, event.user_id, event.role) == (
        state.slugs["shop"],
        uid(state, "bob"),
        "editor",
    )


def test_setting_the_role_a_member_has_changes_nothing() -> None:
    state = shop_owned_by("ann")
    assert (
        decide_identity(state, SetMember(app="shop", user="ann", role=Role.OWNER)) == []
    )


def test_an_app_keeps_at_least_one_owner() -> None:
    state = shop_owned_by("ann", "bob")
    for command in (
        SetMember(app="shop", user="ann", role=Role.VIEWER),
        RemoveMember(app="shop", user="ann"),
    ):
        with pytest.raises(Conflict, match="at least one owner"):
            decide_identity(state, command)
    state = run_system(state, SetMember(app="shop", user="bob", role=Role.OWNER))
    [event] = decide_identity(state, RemoveMember(app="shop", user="ann"))
    assert isinstance(event, MemberRemoved)
    state = run_system(state, SetMember(app="shop", user="ann", role=Role.VIEWER))
    member = state.member(state.slugs["shop"], uid(state, "ann"))
    assert member is not None
    assert member.role == "viewer"


def test_removing_someone_who_is_not_a_member_is_not_found() -> None:
    state = shop_owned_by("ann", "bob")
    with pytest.raises(NotFound, match="not a member"):
        decide_identity(state, RemoveMember(app="shop", user="bob"))
    with pytest.raises(NotFound, match="no app"):
        decide_identity(state, RemoveMember(app="nope", user="bob"))


# -- keys ----------------------------------------------------------------------


def test_a_key_records_its_hash_prefix_and_sorted_scopes() -> None:
    state = with_users("ann")
    [event] = decide_identity(
        state, new_key(scopes=("script:write", "app:read", "app:read"))
    )
    assert isinstance(event, ApiKeyCreated)
    assert (event.user_id, event.secret_hash, event.prefix, event.app_id) == (
        uid(state, "ann"),
        SECRET_HASH,
        "pc_abcd",
        None,
    )
    assert event.scopes == ("app:read", "script:write")


@pytest.mark.parametrize(
    "secret_hash", ["", "AB" * 32, "ab" * 31, "ab" * 33, "zz" * 32]
)
def test_a_key_needs_a_hex_sha256_of_its_secret(secret_hash: str) -> None:
    command = CreateApiKey(
        user="ann", name="ci", prefix="p", secret_hash=secret_hash, scopes=("app:read",)
    )
    with pytest.raises(InvalidInput, match="SHA-256"):
        decide_identity(with_users("ann"), command)


@pytest.mark.parametrize("scopes", [(), ("app:admin",), ("APP:READ",)])
def test_a_key_needs_known_scopes(scopes: tuple[str, ...]) -> None:
    with pytest.raises(InvalidInput):
        decide_identity(with_users("ann"), new_key(scopes=scopes))


def test_a_key_binds_only_to_an_app_its_user_is_a_member_of() -> None:
    state = shop_owned_by("ann", "bob")
    shop = state.slugs["shop"]
    with pytest.raises(NotFound, match="that you can access"):
        decide_identity(state, new_key("bob", app="shop"))
    with pytest.raises(NotFound, match="that you can access"):
        decide_identity(state, new_key("ann", app="nope"))
    for user, app in (("ann", "shop"), ("ann", shop), ("root", "shop")):
        [event] = decide_identity(state, new_key(user, app=app))
        assert isinstance(event, ApiKeyCreated)
        assert event.app_id == shop
    state = run_system(state, SetMember(app="shop", user="bob", role=Role.VIEWER))
    assert decide_identity(state, new_key("bob", app="shop"))


def test_revoking_is_idempotent_and_self_service_is_limited_to_own_keys() -> None:
    state = run_system(with_users("ann", "bob"), new_key("ann"))
    [key_id] = state.keys
    with pytest.raises(NotFound):
        decide_identity(state, RevokeApiKey(key=key_id, user=uid(state, "bob")))
    with pytest.raises(NotFound):
        decide_identity(state, RevokeApiKey(key="nope"))
    [event] = decide_identity(state, RevokeApiKey(key=key_id, user=uid(state, "ann")))
    assert isinstance(event, ApiKeyRevoked)
    state = fold_system([event], state)
    assert decide_identity(state, RevokeApiKey(key=key_id)) == []
    assert (
        decide_identity(state, RevokeApiKey(key=key_id, user=uid(state, "ann"))) == []
    )


# -- answers -------------------------------------------------------------------


def test_the_answers_are_the_things_as_they_now_are_without_secrets() -> None:
    state = shop_owned_by("ann", "bob")
    command = CreateUser(username="Cy", password_hash=HASH)
    events = decide_identity(state, command)
    state = fold_system(events, state)
    answer = identity_answer(state, command, events)
    assert isinstance(answer, UserRecord)
    assert (answer.username, answer.admin) == ("cy", False)

    command_m = SetMember(app="shop", user="cy", role=Role.EDITOR)
    state = run_system(state, command_m)
    member = identity_answer(state, command_m, [])
    assert isinstance(member, MemberRecord)
    assert (member.username, member.role) == ("cy", "editor")

    command_k = new_key("cy", app="shop")
    events = decide_identity(state, command_k)
    state = fold_system(events, state)
    key = identity_answer(state, command_k, events)
    assert isinstance(key, KeyRecord)
    assert (key.user_id, key.scopes, key.app_id) == (
        uid(state, "cy"),
        ["app:read"],
        state.slugs["shop"],
    )
    assert SECRET_HASH not in repr(key)
    assert HASH not in repr(user_record(state.users[uid(state, "cy")]))
    assert key_record(state.keys[key.id]) == key


def test_there_is_no_answer_for_what_no_longer_exists() -> None:
    state = with_users("ann")
    assert identity_answer(state, DeleteUser(user="ann"), []) is None
    assert identity_answer(state, UpdateUser(user="ghost"), []) is None
    assert identity_answer(state, RevokeApiKey(key="nope"), []) is None
    assert identity_answer(state, new_key(), []) is None
    gone = SetMember(app="nope", user="ann", role=Role.VIEWER)
    assert identity_answer(state, gone, []) is None
