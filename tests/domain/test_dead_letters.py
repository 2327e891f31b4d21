"""Replaying and resolving dead letters, and a dead letter as scripts see it."""

from __future__ import annotations

import msgspec
import pytest

from picloud.domain.dead_letters import dead_letter_view, replay_events, resolve_events
from picloud.domain.records import DeadLetterRecord
from picloud.errors import Conflict
from picloud.events.app import RequestRecord
from picloud.events.triggers import DeadLetterReplayed, DeadLetterResolved
from tests.events.helpers import APP, AT, later

REQUEST = RequestRecord(
    method="POST", path="/jobs/1", params={"id": "1"}, body=b"\x00\x01"
)


def letter(**fields: object) -> DeadLetterRecord:
    base = DeadLetterRecord(
        id="L1",
        app_id=APP,
        source="kv",
        script_id="s1",
        trigger_id="t1",
        route_id=None,
        event=msgspec.Raw(b'{"source":"kv","op":"set","key":"k","value":[1,2]}'),
        request=None,
        error="boom",
        attempts=5,
        depth=1,
        resolution=None,
        resolved_by=None,
        resolved_at=None,
        first_attempt_at=AT,
        created_at=later(30),
    )
    return msgspec.structs.replace(base, **fields)


def only_replay(record: DeadLetterRecord, by: str | None) -> DeadLetterReplayed:
    [event] = replay_events(record, by)
    assert isinstance(event, DeadLetterReplayed)
    return event


def test_a_replay_repeats_the_letter_so_the_new_delivery_needs_nothing_else() -> None:
    event = only_replay(letter(), "user:u1")
    assert (event.app_id, event.dead_letter_id, event.source, event.script_id) == (
        APP,
        "L1",
        "kv",
        "s1",
    )
    assert (event.trigger_id, event.route_id, event.request, event.depth) == (
        "t1",
        None,
        None,
        1,
    )
    assert event.event == letter().event
    assert event.by == "user:u1"
    assert event.delivery_id.startswith("replay:L1:")


def test_each_replay_is_a_new_delivery() -> None:
    ids = {only_replay(letter(), None).delivery_id for _ in range(20)}
    assert len(ids) == 20


def test_an_async_routes_letter_replays_with_its_request() -> None:
    record = letter(
        source="route",
        trigger_id=None,
        route_id="r1",
        event=msgspec.Raw(b"null"),
        request=msgspec.Raw(msgspec.json.encode(REQUEST)),
    )
    event = only_replay(record, None)
    assert (event.route_id, event.request) == ("r1", REQUEST)
    assert event.by is None


@pytest.mark.parametrize("resolution", [None, "replayed", "handler_failed"])
def test_an_open_replayed_or_failed_letter_can_be_replayed(
    resolution: str | None,
) -> None:
    assert only_replay(letter(resolution=resolution), None).dead_letter_id == "L1"


def test_a_resolved_letter_cannot_be_replayed() -> None:
    with pytest.raises(Conflict, match="L1 is resolved"):
        replay_events(letter(resolution="resolved"), None)


def test_resolving_records_who_and_resolving_twice_changes_nothing() -> None:
    [event] = resolve_events(letter(resolution="replayed"), "key:k1")
    assert isinstance(event, DeadLetterResolved)
    assert (event.app_id, event.dead_letter_id, event.by) == (APP, "L1", "key:k1")
    assert resolve_events(letter(resolution="resolved"), "key:k1") == []


def test_scripts_see_the_letter_with_its_event_as_data_and_an_iso_time() -> None:
    view = dead_letter_view(letter(resolution="replayed"))
    assert view == {
        "id": "L1",
        "source": "kv",
        "event": {"source": "kv", "op": "set", "key": "k", "value": [1, 2]},
        "error": "boom",
        "attempts": 5,
        "resolution": "replayed",
        "trigger_id": "t1",
        "script_id": "s1",
        "created_at": "2026-01-02T03:04:35Z",
    }
    assert "request" not in view
