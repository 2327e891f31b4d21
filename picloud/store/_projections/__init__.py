"""Projection tables, written in the same transaction as the events they follow.

Each ``project_*`` function is used both live (inside the append transaction)
and by ``picloud replay``, so a rebuilt projection equals the live one.
"""

from __future__ import annotations

from picloud.store._projections.app import project_app
from picloud.store._projections.system import project_system

__all__ = ["project_app", "project_system"]
