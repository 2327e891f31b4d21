"""What-if's views of runs and their comparison (pure)."""

from __future__ import annotations

import hashlib

import msgspec

from picloud.domain.what_if import (
    NewRun,
    ResponseView,
    RunView,
    changed,
    response_view,
    write_view,
)
from picloud.events.app import (
    DocCreated,
    DocDeleted,
    DocUpdated,
    KvDeleted,
    KvSet,
    ResponseRecord,
    RouteRemoved,
)
from picloud.events.triggers import DeadLetterResolved
from tests.events.helpers import APP, AT

RAW = msgspec.Raw(b'{"b":1,"a":[1,2]}')


def body(text: bytes, status: int = 200) -> ResponseView:
    view = response_view(ResponseRecord(status=status, body=text, size=len(text)))
    assert view is not None
    return view


def test_writes_read_as_the_sdk_calls_that_made_them() -> None:
    views = [
        write_view(KvSet(at=AT, app_id=APP, collection="c", key="k", value=RAW)),
        write_view(KvDeleted(at=AT, app_id=APP, collection="c", key="k", prev=RAW)),
        write_view(DocCreated(at=AT, app_id=APP, collection="d", doc_id="x", data=RAW)),
        write_view(
            DocUpdated(
                at=AT, app_id=APP, collection="d", doc_id="x", data=RAW, prev_data=RAW
            )
        ),
        write_view(
            DocDeleted(at=AT, app_id=APP, collection="d", doc_id="x", prev_data=RAW)
        ),
        write_view(
            DeadLetterResolved(at=AT, app_id=APP, dead_letter_id="l", by="script")
        ),
        write_view(RouteRemoved(at=AT, app_id=APP, route_id="r")),
    ]
    value = {"a": [1, 2], "b": 1}
    assert views == [
        {"op": "kv.set", "collection": "c", "key": "k", "value": value},
        {"op": "kv.delete", "collection": "c", "key": "k"},
        # a created document's id is random: it is no part of what a run did
        {"op": "docs.create", "collection": "d", "data": value},
        {"op": "docs.update", "collection": "d", "id": "x", "data": value},
        {"op": "docs.delete", "collection": "d", "id": "x"},
        {"op": "dead_letters.resolve", "id": "l"},
        None,
    ]


def test_a_response_view_shows_text_bytes_or_only_the_digest() -> None:
    text = body(b'{"ok":true}')
    assert (text.body, text.body_base64) == ('{"ok":true}', None)
    assert text.sha256 == hashlib.sha256(b'{"ok":true}').hexdigest()
    binary = body(b"\xff\x00")
    assert (binary.body, binary.body_base64) == (None, b"\xff\x00")
    digest_only = response_view(ResponseRecord(status=200, size=9, sha256="ab" * 32))
    assert digest_only is not None
    assert (digest_only.body, digest_only.sha256) == (None, "ab" * 32)
    assert response_view(None) is None


def test_changed_compares_status_answer_and_writes_not_wording_or_logs() -> None:
    write = {"op": "kv.set", "collection": "c", "key": "k", "value": 1}
    then = RunView(status="ok", response=body(b'{"a":1,"b":2}'), writes=[write])
    same = NewRun(
        status="ok",
        response=body(b'{"b":2,"a":1}'),  # Lua orders keys its own way
        writes=[write],
        logs=[],
    )
    assert not changed(then, same)
    assert changed(then, NewRun(status="error", error="boom"))
    assert changed(then, NewRun(status="ok", response=then.response, writes=[]))
    assert changed(then, NewRun(status="ok", response=body(b'{"a":2}'), writes=[write]))
    assert changed(then, NewRun(status="ok", response=None, writes=[write]))
    other_status = body(b'{"a":1,"b":2}', status=201)
    assert changed(then, NewRun(status="ok", response=other_status, writes=[write]))
    failed = RunView(status="error", error="line 3: boom")
    assert not changed(failed, NewRun(status="error", error="line 9: boom"))
    kept_digest = RunView(
        status="ok",
        response=ResponseView(status=200, size=5, sha256=body(b"hello").sha256),
    )
    assert not changed(kept_digest, NewRun(status="ok", response=body(b"hello")))
    assert changed(kept_digest, NewRun(status="ok", response=body(b"HELLO")))
