"""App commands on the system stream, and the answers the API gives."""

from __future__ import annotations

import pytest

from picloud.domain.access import Role
from picloud.domain.identity import CreateUser, SetMember
from picloud.domain.records import AppRecord, UserRecord
from picloud.domain.system import (
    CreateApp,
    DeleteApp,
    UpdateApp,
    answer,
    app_record,
    decide_system,
)
from picloud.errors import Conflict, InvalidInput, NotFound
from picloud.events import AppCreated, AppDeleted, AppUpdated, MemberSet
from picloud.events.system_state import SystemState
from tests.domain.helpers import HASH, run_system, uid, with_users
from tests.events.helpers import fold_system, recorded


def with_shop() -> SystemState:
    state = with_users("ann")
    return run_system(
        state, CreateApp(slug="shop", name="Shop", owner=uid(state, "ann"))
    )


def test_a_new_app_gets_a_fresh_id_and_its_creator_as_owner() -> None:
    state = with_users("ann")
    created, owner = decide_system(
        state, CreateApp(slug="shop", name="Shop", owner=uid(state, "ann"))
    )
    assert isinstance(created, AppCreated)
    assert isinstance(owner, MemberSet)
    assert (created.slug, created.name) == ("shop", "Shop")
    assert (owner.app_id, owner.user_id, owner.role) == (
        created.app_id,
        uid(state, "ann"),
        "owner",
    )
    [alone] = decide_system(state, CreateApp(slug="blog", name="Blog"))
    assert isinstance(alone, AppCreated)
    assert alone.app_id != created.app_id


def test_the_owner_of_a_new_app_must_exist_by_id() -> None:
    state = with_users("ann")
    with pytest.raises(NotFound):
        decide_system(state, CreateApp(slug="shop", name="Shop", owner="ghost"))
    with pytest.raises(NotFound):  # a username is not a user id
        decide_system(state, CreateApp(slug="shop", name="Shop", owner="ann"))


@pytest.mark.parametrize("slug", ["Shop", "-shop", "api", "a" * 64, ""])
def test_a_new_app_needs_a_valid_unreserved_slug(slug: str) -> None:
    with pytest.raises(InvalidInput):
        decide_system(SystemState(), CreateApp(slug=slug, name="x"))


def test_slugs_are_unique_on_create_and_on_update() -> None:
    state = run_system(with_shop(), CreateApp(slug="blog", name="Blog"))
    with pytest.raises(Conflict, match="'shop'"):
        decide_system(state, CreateApp(slug="shop", name="Another"))
    with pytest.raises(Conflict, match="'shop'"):
        decide_system(state, UpdateApp(app="blog", slug="shop"))


def test_an_update_gives_both_slug_and_name_and_keeps_what_is_not_given() -> None:
    state = with_shop()
    shop = state.slugs["shop"]
    [event] = decide_system(state, UpdateApp(app="shop", name="The Shop"))
    assert isinstance(event, AppUpdated)
    assert (event.app_id, event.slug, event.name) == (shop, "shop", "The Shop")
    [event] = decide_system(state, UpdateApp(app=shop, slug="store"))
    assert isinstance(event, AppUpdated)
    assert (event.slug, event.name) == ("store", "Shop")
    state = fold_system([event], state)
    assert state.app("store") is not None
    assert state.app("shop") is None


def test_an_update_to_its_own_slug_is_no_conflict_but_a_bad_new_slug_is_refused() -> (
    None
):
    state = with_shop()
    [event] = decide_system(state, UpdateApp(app="shop", slug="shop"))
    assert isinstance(event, AppUpdated)
    for slug in ("admin", "Store", "11111111-1111-4111-8111-111111111111"):
        with pytest.raises(InvalidInput):
            decide_system(state, UpdateApp(app="shop", slug=slug))


def test_deleting_an_app_records_its_slug_and_takes_its_memberships() -> None:
    state = with_shop()
    shop = state.slugs["shop"]
    [event] = decide_system(state, DeleteApp(app="shop"))
    assert isinstance(event, AppDeleted)
    assert (event.app_id, event.slug) == (shop, "shop")
    state = fold_system([event], state)
    assert state.app(shop) is None
    assert shop not in state.members
    [again] = decide_system(state, CreateApp(slug="shop", name="Shop again"))
    assert isinstance(again, AppCreated)


@pytest.mark.parametrize(
    "command", [UpdateApp(app="ghost", name="x"), DeleteApp(app="ghost")]
)
def test_commands_on_an_unknown_app_are_not_found(
    command: UpdateApp | DeleteApp,
) -> None:
    with pytest.raises(NotFound, match="'ghost'"):
        decide_system(with_shop(), command)


def test_identity_commands_go_to_the_identity_decider() -> None:
    state = with_shop()
    with pytest.raises(Conflict):
        decide_system(state, CreateUser(username="ANN", password_hash=HASH))
    with pytest.raises(Conflict, match="owner"):
        decide_system(state, SetMember(app="shop", user="ann", role=Role.VIEWER))


def test_the_answer_is_the_app_as_it_now_is() -> None:
    state = with_users("ann")
    command = CreateApp(slug="shop", name="Shop", owner=uid(state, "ann"))
    events = decide_system(state, command)
    log = [recorded(e, state.version + i) for i, e in enumerate(events, 1)]
    state = fold_system(events, state)
    shop = answer(state, command, log)
    assert isinstance(shop, AppRecord)
    assert shop == app_record(state.apps[shop.id])
    assert (shop.slug, shop.name) == ("shop", "Shop")

    rename = UpdateApp(app="shop", name="Store")
    events = decide_system(state, rename)
    state = fold_system(events, state)
    renamed = answer(state, rename, [recorded(e, state.version) for e in events])
    assert isinstance(renamed, AppRecord)
    assert (renamed.id, renamed.name) == (shop.id, "Store")

    delete = DeleteApp(app="shop")
    events = decide_system(state, delete)
    state = fold_system(events, state)
    assert answer(state, delete, [recorded(e, state.version) for e in events]) is None


def test_an_identity_command_gets_the_identity_answer() -> None:
    state = with_users()
    command = CreateUser(username="Bob", password_hash=HASH)
    events = decide_system(state, command)
    state = fold_system(events, state)
    bob = answer(state, command, [recorded(e, state.version) for e in events])
    assert isinstance(bob, UserRecord)
    assert bob.username == "bob"
