"""Identity commands: pure decisions, and the ControlPlane on a real database."""

from __future__ import annotations

import asyncpg
import msgspec
import pytest

from picloud.actors.control_plane import ControlPlane
from picloud.domain.access import Role
from picloud.domain.credentials import new_api_key
from picloud.domain.identity import (
    CreateApiKey,
    CreateUser,
    DeleteUser,
    RemoveMember,
    RevokeApiKey,
    SetMember,
    UpdateUser,
)
from picloud.domain.system import CreateApp, DeleteApp, decide_system
from picloud.errors import Conflict, InvalidInput, NotFound
from picloud.events import (
    AppCreated,
    EventMeta,
    MemberSet,
    RecordedEvent,
    UserCreated,
    utcnow,
)
from picloud.events.system_state import SystemState, evolve_system
from picloud.store import EventLog

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
META = EventMeta(actor="test")


def run(state: SystemState, *commands: object) -> SystemState:
    """Decide and apply ``commands`` in turn, as the plane would."""
    for command in commands:
        for event in decide_system(state, command):  # type: ignore[arg-type]  # commands of the union
            recorded = RecordedEvent(
                position=state.version + 1,
                txid=1,
                stream="system",
                version=state.version + 1,
                event=event,
                meta=META,
                recorded_at=utcnow(),
            )
            state = evolve_system(state, recorded)
    return state


def with_users(*names: str, admin: str = "root") -> SystemState:
    state = run(
        SystemState(), CreateUser(username=admin, password_hash=HASH, admin=True)
    )
    for name in names:
        state = run(state, CreateUser(username=name, password_hash=HASH))
    return state


def uid(state: SystemState, name: str) -> str:
    user = state.user(name)
    assert user is not None
    return user.id


def test_usernames_are_unique_case_insensitively_and_well_formed() -> None:
    state = with_users("ann")
    assert state.user("ANN") is not None
    with pytest.raises(Conflict):
        decide_system(state, CreateUser(username="Ann", password_hash=HASH))
    for bad in ("", "-x", "a b", "x" * 64, "ünï"):
        with pytest.raises(InvalidInput):
            decide_system(state, CreateUser(username=bad, password_hash=HASH))


def test_only_password_hashes_are_accepted_never_a_plain_password() -> None:
    with pytest.raises(InvalidInput, match="argon2id"):
        decide_system(SystemState(), CreateUser(username="x", password_hash="hunter22"))


def test_the_last_admin_cannot_be_demoted_or_deleted() -> None:
    state = with_users()
    with pytest.raises(Conflict):
        decide_system(state, UpdateUser(user="root", admin=False))
    with pytest.raises(Conflict):
        decide_system(state, DeleteUser(user="root"))
    state = run(state, CreateUser(username="two", password_hash=HASH, admin=True))
    state = run(state, UpdateUser(user="root", admin=False))
    assert state.user("root").is_admin is False  # type: ignore[union-attr]  # exists


def test_the_creator_of_an_app_becomes_its_owner_and_it_keeps_one() -> None:
    state = with_users("ann", "bob")
    ann = uid(state, "ann")
    events = decide_system(state, CreateApp(slug="shop", name="Shop", owner=ann))
    assert isinstance(events[1], MemberSet)
    assert events[1].role == "owner"
    state = run(state, CreateApp(slug="shop", name="Shop", owner=ann))
    app_id = state.slugs["shop"]
    with pytest.raises(Conflict, match="owner"):
        decide_system(state, SetMember(app="shop", user="ann", role=Role.EDITOR))
    with pytest.raises(Conflict, match="owner"):
        decide_system(state, RemoveMember(app="shop", user="ann"))
    state = run(state, SetMember(app="shop", user="bob", role=Role.OWNER))
    state = run(state, RemoveMember(app="shop", user="ann"))
    assert state.member(app_id, ann) is None
    assert (
        decide_system(state, SetMember(app="shop", user="bob", role=Role.OWNER)) == []
    )
    state = run(state, DeleteApp(app="shop"))
    assert app_id not in state.members


def test_keys_bind_only_to_apps_their_user_can_reach_and_revoke_idempotently() -> None:
    state = with_users("ann")
    state = run(state, CreateApp(slug="shop", name="Shop"))
    made = new_api_key()

    def create(app: str | None, user: str = "ann") -> CreateApiKey:
        return CreateApiKey(
            user=user,
            name="ci",
            prefix=made.prefix,
            secret_hash=made.hash,
            scopes=("app:read",),
            app=app,
        )

    with pytest.raises(NotFound):
        decide_system(state, create("shop"))
    with pytest.raises(NotFound):
        decide_system(state, create("nope", user="root"))
    state = run(state, create("shop", user="root"), create(None))
    assert len(state.keys) == 2
    key_id = next(k.id for k in state.keys.values() if k.user_id == uid(state, "ann"))
    with pytest.raises(NotFound):
        decide_system(state, RevokeApiKey(key=key_id, user=uid(state, "root")))
    state = run(state, RevokeApiKey(key=key_id))
    assert state.keys[key_id].revoked_at is not None
    assert decide_system(state, RevokeApiKey(key=key_id)) == []
    with pytest.raises(InvalidInput):
        decide_system(state, msgspec.structs.replace(create(None), scopes=()))


def test_deleting_a_user_removes_their_memberships_and_keys() -> None:
    state = with_users("ann")
    ann = uid(state, "ann")
    made = new_api_key()
    state = run(
        state,
        CreateApp(slug="shop", name="Shop", owner=ann),
        CreateApiKey(
            user="ann",
            name="k",
            prefix=made.prefix,
            secret_hash=made.hash,
            scopes=("app:read",),
        ),
        CreateApp(slug="other", name="O", owner=uid(state, "root")),
        SetMember(app="other", user="ann", role=Role.VIEWER),
        DeleteUser(user="ann"),
    )
    assert state.user("ann") is None
    assert not state.keys
    assert all(ann not in roles for roles in state.members.values())


@pytest.fixture
def plane(event_log: EventLog) -> ControlPlane:
    return ControlPlane(event_log)


async def test_the_plane_sees_what_another_writer_appended_before_deciding(
    event_log: EventLog, plane: ControlPlane, pool: asyncpg.Pool
) -> None:
    await plane.execute(CreateUser(username="ann", password_hash=HASH), META)
    # A second writer — as the CLI is — on the same database.
    cli = ControlPlane(event_log)
    await cli.execute(CreateUser(username="bob", password_hash=HASH), META)
    with pytest.raises(Conflict):
        await plane.execute(CreateUser(username="bob", password_hash=HASH), META)
    bob = uid(plane.state, "bob")
    recorded = await plane.execute(CreateApp(slug="s", name="S", owner=bob), META)
    assert [type(r.event) for r in recorded] == [AppCreated, MemberSet]
    rows = await pool.fetch("SELECT username FROM users ORDER BY username")
    assert [r["username"] for r in rows] == ["ann", "bob"]
    role = await pool.fetchval("SELECT role FROM memberships")
    assert role == "owner"
    stored = await pool.fetchval(
        "SELECT password_hash FROM users WHERE username = 'ann'"
    )
    assert stored == HASH
    assert isinstance((await event_log.read_stream("system"))[0].event, UserCreated)


async def test_a_command_that_changes_nothing_appends_nothing(
    event_log: EventLog, plane: ControlPlane
) -> None:
    await plane.execute(CreateUser(username="ann", password_hash=HASH), META)
    made = new_api_key()
    [created] = await plane.execute(
        CreateApiKey(
            user="ann",
            name="k",
            prefix=made.prefix,
            secret_hash=made.hash,
            scopes=("app:read",),
        ),
        META,
    )
    key_id = created.event.key_id  # type: ignore[attr-defined]  # an ApiKeyCreated
    assert len(await plane.execute(RevokeApiKey(key=key_id), META)) == 1
    assert await plane.execute(RevokeApiKey(key=key_id), META) == []
    assert await event_log.stream_version("system") == 3
