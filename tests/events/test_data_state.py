"""The pure fold of an app's data: apply_all is apply, event by event."""

from __future__ import annotations

import msgspec

from picloud.events.app import (
    DocCreated,
    DocDeleted,
    DocUpdated,
    KvDeleted,
    KvSet,
    RouteRemoved,
)
from picloud.events.data_state import DataState, DocState
from tests.events.helpers import APP, AT, later


def raw(n: int) -> msgspec.Raw:
    return msgspec.Raw(b'{"n":%d}' % n)


EVENTS = [
    KvSet(at=AT, app_id=APP, collection="c", key="a", value=raw(1)),
    KvSet(at=AT, app_id=APP, collection="c", key="b", value=raw(2)),
    KvSet(at=AT, app_id=APP, collection="c", key="a", value=raw(3)),
    KvDeleted(at=AT, app_id=APP, collection="c", key="b", prev=raw(2)),
    RouteRemoved(at=AT, app_id=APP, route_id="r"),
    DocCreated(at=AT, app_id=APP, collection="d", doc_id="x", data=raw(4)),
    DocUpdated(
        at=later(1),
        app_id=APP,
        collection="d",
        doc_id="x",
        data=raw(5),
        prev_data=raw(4),
    ),
    DocCreated(at=AT, app_id=APP, collection="d", doc_id="y", data=raw(6)),
    DocDeleted(at=later(2), app_id=APP, collection="d", doc_id="y", prev_data=raw(6)),
]


def test_apply_all_folds_as_apply_does_one_by_one() -> None:
    one_by_one = DataState()
    for event in EVENTS:
        one_by_one.apply(event)
    bulk = DataState()
    bulk.apply_all(EVENTS)
    assert bulk == one_by_one
    assert bulk.kv == {("c", "a"): b'{"n":3}'}
    assert bulk.docs == {("d", "x"): DocState(b'{"n":5}', AT, later(1))}


def test_the_fold_keeps_no_view_of_the_decoded_buffer() -> None:
    # Values are copied out of msgspec.Raw: a bulk decode's whole page must
    # not stay alive for the one value the fold keeps of it.
    state = DataState()
    state.apply_all(EVENTS[:1])
    assert type(state.kv["c", "a"]) is bytes
