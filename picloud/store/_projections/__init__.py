"""Projection tables, written in the same transaction as the events they follow.

Each ``project_*`` function is applied live, inside the append transaction;
a rebuild from the log must use these same functions, so that a rebuilt
projection can equal the live one.
"""

from __future__ import annotations

from picloud.store._projections.app import project_app
from picloud.store._projections.system import project_system

__all__ = ["project_app", "project_system"]
