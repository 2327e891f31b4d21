"""What one command produces, and the replies commands share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from picloud.actors._app_data import KvIntent, Staged
from picloud.actors.protocol import Done, HttpReply, Reply
from picloud.events import Event, EventMeta, RecordedEvent

__all__ = ["Outcome", "ReplyFn", "accepted", "done", "not_found", "result"]

ReplyFn = Callable[[list[RecordedEvent]], Reply]
_JSON = {"Content-Type": "application/json"}


@dataclass
class Outcome:
    """Events to append and how to reply once they are durable.

    ``events`` may hold KvIntents (resolved to KvSet at append time);
    ``staged`` is the command's data writes, visible to later commands at once.
    """

    events: Sequence[Event | KvIntent]
    meta: EventMeta
    reply: Reply | ReplyFn
    staged: Staged | None = None


def done(recorded: list[RecordedEvent], result: Any = None) -> Reply:
    """Done, with the place of the command's last event (for read-your-writes)."""
    last = recorded[-1] if recorded else None
    return Done(
        result=result,
        txid=last.txid if last else 0,
        position=last.position if last else 0,
    )


def result(value: Any) -> ReplyFn:
    """A reply of ``value`` once durable."""
    return lambda recorded: done(recorded, value)


def not_found(message: str) -> Reply:
    body = {"error": {"code": "not_found", "message": message}}
    return HttpReply(status=404, headers=_JSON, body=msgspec.json.encode(body))


def accepted(execution_id: str) -> Reply:
    body = {"execution_id": execution_id}
    return HttpReply(status=202, headers=_JSON, body=msgspec.json.encode(body))
