"""Snapshots: a faithful cache of an app's state, ignored when unreadable."""

from __future__ import annotations

import msgspec
import pytest
from pyrsistent import pmap

from picloud.events.app import AppQuarantined, HostKilled, RequestRecord
from picloud.events.app_state import AppState
from picloud.events.pending import Deliveries, Delivery
from picloud.events.snapshot import decode_snapshot, encode_snapshot
from tests.events.helpers import (
    APP,
    AT,
    fold_app,
    later,
    route_added,
    script_saved,
    trigger_added,
)


def busy_app() -> AppState:
    return fold_app(
        [
            script_saved("s1", "hello", imports=["util", "fmt"]),
            script_saved("s2", "util", kind="module"),
            script_saved("s1", "hello", version=2, imports=["util"], at=later(5)),
            route_added("r1", "s1", method="POST", path="/orders/{id}"),
            trigger_added("t1", "s1", ops=["set", "delete"], collection="orders"),
            trigger_added("t2", "s1", kind="dead_letter", capabilities=[]),
            trigger_added("t3", "s1", kind="docs", capabilities=["kv:read"]),
            HostKilled(at=later(7), app_id=APP, host="h0", execution_id="e1"),
            HostKilled(at=later(8), app_id=APP, host="h1", execution_id="e2"),
            AppQuarantined(at=later(8), app_id=APP, host_kills=2),
        ]
    )


def pending() -> Deliveries:
    route = Delivery(
        id="route:e9",
        seq=11,
        source="route",
        script_id="s1",
        first_attempt_at=AT,
        route_id="r1",
        request=RequestRecord(method="POST", path="/orders/1", body=b"\x00{}"),
        execution_id="e9",
        attempt=3,
        due_at=later(30),
    )
    data = Delivery(
        id="12:t1",
        seq=12,
        source="kv",
        script_id="s1",
        first_attempt_at=later(1),
        trigger_id="t1",
        event=msgspec.Raw(b'{"source":"kv","op":"set","key":"k"}'),
        depth=2,
        capabilities=("kv:read", "kv:write"),
    )
    return pmap({route.id: route, data.id: data})


def test_a_snapshot_gives_back_the_state_the_deliveries_and_the_version() -> None:
    state, deliveries = busy_app(), pending()
    back = decode_snapshot(APP, encode_snapshot(state, deliveries, 42))
    assert back is not None
    assert back == (state, deliveries, 42)
    restored = back[0]
    assert restored.script_named("hello") == state.scripts["s1"]
    assert restored.triggers["t2"].capabilities == ()
    assert restored.triggers["t1"].capabilities is None
    assert restored.quarantined


def test_an_empty_app_round_trips() -> None:
    empty = AppState(app_id=APP)
    assert decode_snapshot(APP, encode_snapshot(empty, pmap(), 0)) == (
        empty,
        pmap(),
        0,
    )


def test_the_snapshot_takes_the_app_id_it_is_read_for() -> None:
    back = decode_snapshot("other", encode_snapshot(busy_app(), pmap(), 1))
    assert back is not None
    assert back[0].app_id == "other"


def test_encoding_is_deterministic_for_a_set_of_ops() -> None:
    one = encode_snapshot(busy_app(), pending(), 3)
    assert one == encode_snapshot(busy_app(), pending(), 3)
    assert b'"ops":["delete","set"]' in one


def _other_format() -> bytes:
    raw = msgspec.json.decode(encode_snapshot(busy_app(), pending(), 1))
    raw["format"] = "snapshot.v1"
    return msgspec.json.encode(raw)


def _retyped_field() -> bytes:
    raw = msgspec.json.decode(encode_snapshot(busy_app(), pending(), 1))
    raw["version"] = "forty-two"
    return msgspec.json.encode(raw)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff garbage",
        b"{}",
        b"[]",
        encode_snapshot(AppState(app_id=APP), pmap(), 1)[:-3],
        _other_format(),
        _retyped_field(),
    ],
    ids=["empty", "binary", "no-fields", "array", "truncated", "v1", "retyped"],
)
def test_a_snapshot_this_version_cannot_read_is_ignored(data: bytes) -> None:
    assert decode_snapshot(APP, data) is None
