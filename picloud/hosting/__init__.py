"""The Ray shells of the actors, the host pool, the channel to front doors
and the scheduler of wake-ups: the only package that imports Ray (besides
the composition root, :mod:`picloud.server`).
"""

from __future__ import annotations

from picloud.hosting.control_actor import (
    CONTROL_PLANE_NAME,
    ControlPlaneClient,
    start_control_plane,
)
from picloud.hosting.host_pool import HostLink, HostPool, rendezvous
from picloud.hosting.scheduler import sweep_retention, wake_due_apps

__all__ = [
    "CONTROL_PLANE_NAME",
    "ControlPlaneClient",
    "HostLink",
    "HostPool",
    "rendezvous",
    "start_control_plane",
    "sweep_retention",
    "wake_due_apps",
]
