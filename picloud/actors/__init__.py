"""The plain-Python actors: AppActor (the one writer of an app's stream) and
ControlPlane (the writer of the ``system`` stream), the SDK they run scripts
with, and the protocol their hosts speak. No Ray here (hosting/ wraps them).
"""

from __future__ import annotations

from picloud.actors.app_actor import AppActor, app_stream
from picloud.actors.control_plane import SYSTEM_STREAM, ControlPlane
from picloud.actors.invoker import Invoker
from picloud.actors.protocol import (
    Call,
    Done,
    Failure,
    HttpReply,
    Reply,
    ReplyFrame,
    failure_of,
    guarded,
    unwrap,
)
from picloud.actors.sdk import DataAccess, envelope

__all__ = [
    "SYSTEM_STREAM",
    "AppActor",
    "Call",
    "ControlPlane",
    "DataAccess",
    "Done",
    "Failure",
    "HttpReply",
    "Invoker",
    "Reply",
    "ReplyFrame",
    "app_stream",
    "envelope",
    "failure_of",
    "guarded",
    "unwrap",
]
