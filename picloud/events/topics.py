"""Which events interest which followers of the global order."""

from __future__ import annotations

__all__ = ["ROUTING_EVENT_TYPES"]

ROUTING_EVENT_TYPES = frozenset(
    {
        "app.created.v1",
        "app.updated.v1",
        "app.deleted.v1",
        "route.added.v1",
        "route.removed.v1",
        "app.quarantined.v1",
        "app.cors_set.v1",
    }
)
"""What the front door's routing table follows; commits of these wake it."""
