"""Projection tables, written in the same transaction as the events they follow.

Each ``project_*`` function is applied live, inside the append transaction;
a rebuild from the log must use these same functions, so that a rebuilt
projection can equal the live one.
"""

from __future__ import annotations

from picloud.store._projections.app import project_app
from picloud.store._projections.system import project_system

__all__ = ["UNPROJECTED_TYPES", "project_app", "project_system"]

UNPROJECTED_TYPES = frozenset(
    {
        "invocation.recorded.v1",  # the execution log reads the events themselves
        "invocation.accepted.v1",  # a pending delivery: the actor's fold, no table
        "app.host_killed.v1",  # control state only
        "delivery.retry_scheduled.v1",  # pending deliveries only
        "delivery.skipped.v1",
    }
)
"""Types the functions above ignore, so a rebuild need not read them (most of
a busy log: every invocation's record). The rebuild-equals-live tests keep
this honest: a type given a projection but left here would be missed."""
