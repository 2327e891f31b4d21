"""The routing table follows known event types only."""

from __future__ import annotations

from picloud.events import event_types
from picloud.events.topics import ROUTING_EVENT_TYPES


def test_the_routing_table_follows_known_tags_of_apps_and_routes() -> None:
    assert set(event_types()) >= ROUTING_EVENT_TYPES
    assert {"route.added.v1", "route.removed.v1"} <= ROUTING_EVENT_TYPES
    assert "kv.set.v1" not in ROUTING_EVENT_TYPES
