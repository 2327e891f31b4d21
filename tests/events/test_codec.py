"""The codec: every event type round-trips through JSON under its own tag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from picloud.events import (
    ApiKeyCreated,
    ApiKeyRevoked,
    AppCreated,
    AppDeleted,
    AppUpdated,
    Event,
    EventMeta,
    MemberRemoved,
    MemberSet,
    UserAdminChanged,
    UserCreated,
    UserDeleted,
    UserPasswordChanged,
    decode_event,
    decode_events,
    decode_meta,
    encode,
    event_types,
    rfc3339,
)
from picloud.events.app import (
    AbandonedExecutionExpired,
    AppQuarantined,
    CorsPolicy,
    CorsSet,
    DocCreated,
    DocDeleted,
    DocUpdated,
    ExecutionAbandoned,
    FetchHostsSet,
    HostKilled,
    InvocationAccepted,
    InvocationRecorded,
    KvDeleted,
    KvExpired,
    KvSet,
    LogEntry,
    RequestRecord,
    RouteAdded,
    RouteRemoved,
    ScriptDeleted,
    ScriptSaved,
)
from picloud.events.system import SecretDeleted, SecretSet
from picloud.events.triggers import (
    DeadLettered,
    DeadLetterExpired,
    DeadLetterHandlerFailed,
    DeadLetterReplayed,
    DeadLetterResolved,
    DeliverySkipped,
    RetryScheduled,
    ScheduleFired,
    TriggerAdded,
    TriggerRemoved,
)
from tests.events.helpers import (
    APP,
    AT,
    later,
    recorded,
    route_added,
    script_saved,
    trigger_added,
)

RAW = msgspec.Raw(b'{"n":1,"s":"\\u00e9"}')
REQUEST = RequestRecord(
    method="POST",
    path="/orders/7",
    params={"id": "7"},
    query={"q": "x"},
    headers={"content-type": "application/json"},
    body=b"\x00\xffbinary",
)

SAMPLES: list[Event] = [
    AppCreated(at=AT, app_id=APP, slug="shop", name="Shop"),
    AppUpdated(at=AT, app_id=APP, slug="store", name="Störe"),
    AppDeleted(at=AT, app_id=APP, slug="store"),
    UserCreated(at=AT, user_id="u1", username="ann", password_hash="$argon2id$x"),
    UserPasswordChanged(at=AT, user_id="u1", password_hash="$argon2id$y"),
    UserAdminChanged(at=AT, user_id="u1", is_admin=True),
    UserDeleted(at=AT, user_id="u1", username="ann"),
    MemberSet(at=AT, app_id=APP, user_id="u1", role="owner"),
    MemberRemoved(at=AT, app_id=APP, user_id="u1"),
    ApiKeyCreated(
        at=AT,
        key_id="k1",
        user_id="u1",
        name="ci",
        prefix="pc_ab",
        secret_hash="f" * 64,
        scopes=("app:read", "script:write"),
        app_id=APP,
    ),
    ApiKeyRevoked(at=AT, key_id="k1"),
    script_saved("s1", "util", kind="module", imports=["json_helpers"]),
    ScriptDeleted(at=AT, app_id=APP, script_id="s1", name="util"),
    route_added("r1", "s1", method="PUT", path="/orders/{id}"),
    RouteRemoved(at=AT, app_id=APP, route_id="r1"),
    InvocationAccepted(
        at=AT,
        app_id=APP,
        execution_id="e1",
        route_id="r1",
        script_id="s1",
        request=REQUEST,
    ),
    InvocationRecorded(
        at=AT,
        app_id=APP,
        execution_id="e1",
        script_id="s1",
        trigger="async:POST /orders/{id}",
        status="error",
        started_at=later(-1),
        duration_ms=12.5,
        error="boom",
        logs=[LogEntry(level="info", time=AT, message="hi")],
        delivery_id="route:e1",
        attempt=2,
    ),
    ExecutionAbandoned(at=AT, app_id=APP, execution_id="e2", reason="timeout"),
    AbandonedExecutionExpired(at=AT, app_id=APP, execution_id="e2"),
    KvSet(at=AT, app_id=APP, collection="c", key="k", value=RAW, prev=RAW),
    KvDeleted(at=AT, app_id=APP, collection="c", key="k", prev=RAW),
    DocCreated(at=AT, app_id=APP, collection="c", doc_id="d1", data=RAW),
    DocUpdated(at=AT, app_id=APP, collection="c", doc_id="d1", data=RAW, prev_data=RAW),
    DocDeleted(at=AT, app_id=APP, collection="c", doc_id="d1", prev_data=RAW),
    HostKilled(at=AT, app_id=APP, host="host-0", execution_id="e3"),
    AppQuarantined(at=AT, app_id=APP, host_kills=3),
    CorsSet(
        at=AT,
        app_id=APP,
        cors=CorsPolicy(origins=["https://a.example"], methods=["GET"]),
    ),
    FetchHostsSet(at=AT, app_id=APP, hosts=["api.example.com", "*.example.org"]),
    SecretSet(at=AT, app_id=APP, name="TOKEN", ciphertext="c2VhbGVk", key_id="0f"),
    SecretDeleted(at=AT, app_id=APP, name="TOKEN"),
    ScheduleFired(at=AT, app_id=APP, trigger_id="t1", scheduled_at=AT),
    KvExpired(
        at=AT,
        app_id=APP,
        collection="c",
        key="k",
        prev=msgspec.Raw(b"1"),
        expires_at=AT,
    ),
    trigger_added("t1", "s1", kind="docs", ops=["create"], capabilities=["kv:read"]),
    TriggerRemoved(at=AT, app_id=APP, trigger_id="t1"),
    RetryScheduled(
        at=AT, app_id=APP, delivery_id="d1", attempt=2, due_at=later(1), error="x"
    ),
    DeliverySkipped(at=AT, app_id=APP, delivery_id="d1", reason="gone"),
    DeadLettered(
        at=AT,
        app_id=APP,
        dead_letter_id="dl1",
        delivery_id="route:e1",
        script_id="s1",
        trigger_id=None,
        source="route",
        event=msgspec.Raw(b"null"),
        error="boom",
        attempts=5,
        first_attempt_at=later(-60),
        request=REQUEST,
        route_id="r1",
        depth=1,
    ),
    DeadLetterReplayed(
        at=AT,
        app_id=APP,
        dead_letter_id="dl1",
        delivery_id="replay:dl1:ab",
        source="kv",
        script_id="s1",
        event=RAW,
        trigger_id="t1",
        depth=2,
        by="user:u1",
    ),
    DeadLetterResolved(at=AT, app_id=APP, dead_letter_id="dl1", by="key:k1"),
    DeadLetterHandlerFailed(
        at=AT, app_id=APP, dead_letter_id="dl1", delivery_id="dl:dl1:t2", error="x"
    ),
    DeadLetterExpired(at=AT, app_id=APP, dead_letter_id="dl1"),
]


def tag(event: Event) -> str:
    return str(type(event).__struct_config__.tag)


def test_the_samples_cover_every_event_type_once() -> None:
    tags = [tag(e) for e in SAMPLES]
    assert len(tags) == len(set(tags))
    assert set(tags) == set(event_types())


@pytest.mark.parametrize("event", SAMPLES, ids=tag)
def test_every_event_type_round_trips_under_its_tag(event: Event) -> None:
    data = encode(event)
    assert msgspec.json.decode(data)["type"] == tag(event)
    back = decode_event(data)
    assert type(back) is type(event)
    assert back == event
    assert encode(back) == data


def test_event_types_maps_each_dotted_versioned_tag_to_its_struct() -> None:
    types = event_types()
    assert types["script.saved.v1"] is ScriptSaved
    assert types["trigger.added.v1"] is TriggerAdded
    for name, cls in types.items():
        assert cls.__struct_config__.tag == name
        assert name.count(".") >= 2
        assert name.rsplit(".", 1)[1].startswith("v")


@pytest.mark.parametrize(
    "data",
    [
        b'{"type":"script.saved.v999","at":"2026-01-01T00:00:00Z"}',
        b'{"type":"ScriptSaved","at":"2026-01-01T00:00:00Z"}',
        b'{"at":"2026-01-01T00:00:00Z","app_id":"a"}',
        b'{"type":"app.created.v1","at":"2026-01-01T00:00:00Z"}',
        b"not json",
    ],
    ids=["unknown-version", "class-name", "no-tag", "missing-field", "garbage"],
)
def test_a_payload_this_version_cannot_read_raises_decode_error(data: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_event(data)


def test_an_older_reader_skips_fields_a_newer_writer_added() -> None:
    data = encode(SAMPLES[0])[:-1] + b',"added_later":[1,2]}'
    assert decode_event(data) == SAMPLES[0]


def test_a_field_added_later_takes_its_default_when_absent() -> None:
    data = b'{"type":"route.added.v1","at":"2026-01-02T03:04:05Z","app_id":"a",'
    data += b'"route_id":"r","script_id":"s","method":"GET","path":"/"}'
    event = decode_event(data)
    assert isinstance(event, RouteAdded)
    assert event.dispatch_mode == "sync"


def test_meta_round_trips_and_omits_its_defaults() -> None:
    assert encode(EventMeta()) == b"{}"
    meta = EventMeta(
        actor="user:u1",
        causation_id="c",
        correlation_id="r",
        trigger_depth=2,
        idempotency_key="i",
    )
    assert decode_meta(encode(meta)) == meta
    assert decode_meta(b"{}") == EventMeta()


def test_a_recorded_event_names_its_type_by_tag() -> None:
    assert recorded(SAMPLES[0], 1).type == "app.created.v1"


def test_every_time_is_written_as_rfc3339_utc_with_z() -> None:
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    east = timezone(timedelta(hours=2))
    assert rfc3339(datetime(2026, 1, 2, 5, 4, 5, 7, tzinfo=east)) == (
        "2026-01-02T03:04:05.000007Z"
    )


def test_many_payloads_decode_in_bulk_as_each_alone() -> None:
    payloads = [encode(event) for event in SAMPLES]
    joined = b",".join(payloads)
    assert decode_events(joined) == [decode_event(p) for p in payloads]
    assert decode_events(joined.decode()) == SAMPLES
    assert decode_events("") == []


def test_a_bulk_decode_with_one_foreign_payload_raises_decode_error() -> None:
    joined = encode(SAMPLES[0]) + b',{"type":"from.the.future.v9"}'
    with pytest.raises(msgspec.DecodeError):
        decode_events(joined)
