"""An app's control state, folded from its stream by ``evolve_app`` (pure)."""

from __future__ import annotations

import msgspec
import pytest
from pyrsistent import pset, pvector

from picloud.events import Event
from picloud.events.app import (
    AppQuarantined,
    HostKilled,
    InvocationRecorded,
    KvSet,
    RouteRemoved,
    ScriptDeleted,
)
from picloud.events.app_state import AppState, evolve_app
from picloud.events.triggers import DeliverySkipped, TriggerRemoved
from tests.events.helpers import (
    APP,
    AT,
    fold_app,
    later,
    route_added,
    script_saved,
    trigger_added,
)


def test_a_saved_script_is_known_by_id_and_by_name() -> None:
    state = fold_app([script_saved("s1", "hello", imports=["util"])])
    script = state.scripts["s1"]
    assert (script.id, script.name, script.kind, script.version) == (
        "s1",
        "hello",
        "endpoint",
        1,
    )
    assert script.imports == pvector(["util"])
    assert script.created_at == script.updated_at == AT
    assert state.script_named("hello") == script
    assert state.script_named("nope") is None


def test_a_new_version_replaces_the_source_and_keeps_the_creation_time() -> None:
    state = fold_app(
        [
            script_saved("s1", "hello", imports=["a"]),
            script_saved("s1", "hello", version=2, imports=["b"], at=later(60)),
        ]
    )
    script = state.scripts["s1"]
    assert script.version == 2
    assert script.imports == pvector(["b"])
    assert script.created_at == AT
    assert script.updated_at == later(60)
    assert len(state.scripts) == len(state.script_names) == 1


def test_a_deleted_script_is_gone_by_id_and_name_and_its_name_is_free() -> None:
    state = fold_app(
        [
            script_saved("s1", "hello"),
            script_saved("s2", "other"),
            ScriptDeleted(at=AT, app_id=APP, script_id="s1", name="hello"),
        ]
    )
    assert set(state.scripts) == {"s2"}
    assert dict(state.script_names) == {"other": "s2"}
    state = evolve_app(state, script_saved("s3", "hello"))
    assert state.script_named("hello") == state.scripts["s3"]


def test_routes_are_added_with_their_dispatch_mode_and_removed() -> None:
    state = fold_app(
        [
            script_saved("s1", "hello"),
            route_added("r1", "s1", method="POST", path="/a/{id}"),
            route_added("r2", "s1"),
        ]
    )
    route = state.routes["r1"]
    assert (route.script_id, route.method, route.path, route.dispatch_mode) == (
        "s1",
        "POST",
        "/a/{id}",
        "sync",
    )
    state = evolve_app(state, RouteRemoved(at=AT, app_id=APP, route_id="r1"))
    assert set(state.routes) == {"r2"}


def test_removing_a_route_or_trigger_twice_is_harmless() -> None:
    state = fold_app([route_added("r1", "s1"), trigger_added("t1", "s1")])
    gone = [
        RouteRemoved(at=AT, app_id=APP, route_id="r1"),
        TriggerRemoved(at=AT, app_id=APP, trigger_id="t1"),
    ]
    once = fold_app(gone, state)
    assert fold_app(gone, once) == once
    assert not once.routes
    assert not once.triggers


def test_a_trigger_keeps_its_kind_ops_collection_and_capabilities() -> None:
    state = fold_app(
        [
            trigger_added(
                "t1",
                "s1",
                ops=["set", "delete"],
                collection="orders",
                capabilities=["kv:read"],
            ),
            trigger_added("t2", "s1", kind="dead_letter"),
        ]
    )
    t1, t2 = state.triggers["t1"], state.triggers["t2"]
    assert (t1.kind, t1.script_id, t1.collection) == ("kv", "s1", "orders")
    assert t1.ops == pset({"set", "delete"})
    assert t1.capabilities == ("kv:read",)
    assert (t2.kind, t2.ops, t2.collection, t2.capabilities) == (
        "dead_letter",
        pset(),
        None,
        None,
    )
    state = evolve_app(state, TriggerRemoved(at=AT, app_id=APP, trigger_id="t1"))
    assert set(state.triggers) == {"t2"}


def test_host_kills_are_remembered_in_order_and_quarantine_sticks() -> None:
    kills = [
        HostKilled(at=later(s), app_id=APP, host="h0", execution_id=f"e{s}")
        for s in (1, 2)
    ]
    state = fold_app(kills)
    assert list(state.host_kills) == [later(1), later(2)]
    assert not state.quarantined
    state = evolve_app(state, AppQuarantined(at=later(3), app_id=APP, host_kills=2))
    assert state.quarantined
    state = evolve_app(
        state, HostKilled(at=later(4), app_id=APP, host="h1", execution_id="e4")
    )
    assert state.quarantined
    assert len(state.host_kills) == 3


@pytest.mark.parametrize(
    "event",
    [
        KvSet(at=AT, app_id=APP, collection="c", key="k", value=msgspec.Raw(b"1")),
        InvocationRecorded(
            at=AT,
            app_id=APP,
            execution_id="e1",
            script_id="s1",
            trigger="route:GET /",
            status="ok",
            started_at=AT,
            duration_ms=1.0,
        ),
        DeliverySkipped(at=AT, app_id=APP, delivery_id="d1", reason="gone"),
    ],
    ids=["data", "invocation", "delivery"],
)
def test_events_that_are_not_control_state_leave_it_as_it_was(event: Event) -> None:
    state = fold_app([script_saved("s1", "hello")])
    assert evolve_app(state, event) is state


def test_evolving_never_changes_the_state_it_was_given() -> None:
    empty = AppState(app_id=APP)
    full = fold_app(
        [
            script_saved("s1", "hello"),
            route_added("r1", "s1"),
            trigger_added("t1", "s1"),
            HostKilled(at=AT, app_id=APP, host="h0", execution_id="e1"),
            AppQuarantined(at=AT, app_id=APP, host_kills=1),
        ],
        empty,
    )
    assert empty == AppState(app_id=APP)
    assert full != empty
    assert (len(full.scripts), len(full.routes), len(full.triggers)) == (1, 1, 1)
