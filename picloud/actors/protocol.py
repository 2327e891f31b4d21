"""Commands to an app's actor and its replies: what crosses the front door → host hop.

Commands are imperatives (``SaveScript``); each carries an idempotency key so
a retry after a lost reply changes nothing twice. Frames are msgpack.
"""

from __future__ import annotations

from typing import Any

import msgspec

from picloud.actors._remote import Failure
from picloud.events.app import DispatchMode, RequestRecord, ScriptKind
from picloud.events.triggers import TriggerKind

__all__ = [
    "AddRoute",
    "AddTrigger",
    "Call",
    "Command",
    "DataOp",
    "Deactivate",
    "DeleteScript",
    "Deliver",
    "Done",
    "Expire",
    "HttpReply",
    "Invoke",
    "MarkAbandoned",
    "RecordHostKill",
    "RemoveRoute",
    "RemoveTrigger",
    "ReplayDeadLetter",
    "Reply",
    "ReplyFrame",
    "ResolveDeadLetter",
    "SaveScript",
    "Wake",
    "decode_call",
    "decode_reply",
    "encode_frame",
]


class _Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="command"):
    idempotency_key: str | None = None
    actor: str | None = None
    """The principal on whose behalf the command runs (for event metadata)."""


class Invoke(_Command, frozen=True, kw_only=True, tag="invoke"):
    """Run a route's script for an HTTP request."""

    execution_id: str
    route_id: str
    request: RequestRecord
    correlation_id: str | None = None


class SaveScript(_Command, frozen=True, kw_only=True, tag="save_script"):
    """Create a script (``script_id`` None) or replace one's source."""

    name: str | None = None
    kind: ScriptKind = "endpoint"
    source: str
    script_id: str | None = None


class DeleteScript(_Command, frozen=True, kw_only=True, tag="delete_script"):
    script_id: str
    force: bool = False
    """Delete a module even though other scripts import it."""


class AddRoute(_Command, frozen=True, kw_only=True, tag="add_route"):
    script_id: str
    method: str
    path: str
    dispatch_mode: DispatchMode = "sync"


class RemoveRoute(_Command, frozen=True, kw_only=True, tag="remove_route"):
    route_id: str


class DataOp(_Command, frozen=True, kw_only=True, tag="data_op"):
    """An admin read-write of the app's KV or documents: an SDK ``op`` with its
    ``args``, run with the same semantics as from a script."""

    op: str
    args: list[Any]


class MarkAbandoned(_Command, frozen=True, kw_only=True, tag="mark_abandoned"):
    """The caller of a sync request gave up waiting (the front door answered 504)."""

    execution_id: str


class Deliver(_Command, frozen=True, kw_only=True, tag="deliver"):
    """Run a pending delivery (internal: the actor queues it for itself)."""

    delivery_id: str


class Wake(_Command, frozen=True, kw_only=True, tag="wake"):
    """Activate the app so it runs its due deliveries (from the scheduler)."""


class AddTrigger(_Command, frozen=True, kw_only=True, tag="add_trigger"):
    kind: TriggerKind
    script_id: str
    ops: list[str] = []
    collection: str | None = None
    capabilities: list[str] | None = None


class RemoveTrigger(_Command, frozen=True, kw_only=True, tag="remove_trigger"):
    trigger_id: str


class ReplayDeadLetter(_Command, frozen=True, kw_only=True, tag="replay_dead_letter"):
    dead_letter_id: str


class ResolveDeadLetter(_Command, frozen=True, kw_only=True, tag="resolve_dead_letter"):
    dead_letter_id: str


class Expire(_Command, frozen=True, kw_only=True, tag="expire"):
    """The retention sweep: forget these dead letters and abandoned executions."""

    dead_letters: list[str] = []
    abandoned: list[str] = []


class RecordHostKill(_Command, frozen=True, kw_only=True, tag="record_host_kill"):
    """The app's script made the watchdog kill ``host`` (reported after restart)."""

    host: str
    execution_id: str


class Deactivate(_Command, frozen=True, kw_only=True, tag="deactivate"):
    """Passivate the app now (it was deleted or moved to another host)."""


Command = (
    Invoke
    | SaveScript
    | DeleteScript
    | AddRoute
    | RemoveRoute
    | DataOp
    | MarkAbandoned
    | Deliver
    | Wake
    | AddTrigger
    | RemoveTrigger
    | ReplayDeadLetter
    | ResolveDeadLetter
    | Expire
    | RecordHostKill
    | Deactivate
)


class HttpReply(msgspec.Struct, frozen=True, kw_only=True, tag="http"):
    status: int
    headers: dict[str, str] = {}
    body: bytes = b""


class Done(msgspec.Struct, frozen=True, kw_only=True, tag="done"):
    """A command's result; ``txid``/``position`` of its last event, if it wrote any."""

    result: Any = None
    txid: int = 0
    position: int = 0


Reply = HttpReply | Done | Failure


class Call(msgspec.Struct, frozen=True, array_like=True):
    """One request frame: ``id`` pairs it with its reply on the connection."""

    id: int
    app_id: str
    timeout_ms: int
    command: Command


class ReplyFrame(msgspec.Struct, frozen=True, array_like=True):
    id: int
    reply: Reply


_encoder = msgspec.msgpack.Encoder()
_call_decoder = msgspec.msgpack.Decoder(Call)
_reply_decoder = msgspec.msgpack.Decoder(ReplyFrame)


def encode_frame(frame: Call | ReplyFrame) -> bytes:
    """The frame with its 4-byte big-endian length prefix."""
    payload = _encoder.encode(frame)
    return len(payload).to_bytes(4, "big") + payload


def decode_call(payload: bytes | memoryview) -> Call:
    return _call_decoder.decode(payload)


def decode_reply(payload: bytes | memoryview) -> ReplyFrame:
    return _reply_decoder.decode(payload)
