"""What crosses the front door → host hop: calls (a command for an app) and
replies, framed as msgpack; and :class:`Failure`, a PiCloudError on its way
back to the caller, which :func:`unwrap` raises again as the same class.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from picloud import errors
from picloud.domain.commands import Command
from picloud.errors import PiCloudError

__all__ = [
    "Call",
    "Done",
    "Failure",
    "HttpReply",
    "Reply",
    "ReplyFrame",
    "decode_call",
    "decode_reply",
    "encode_frame",
    "failure_of",
    "guarded",
    "unwrap",
]

T = TypeVar("T")


class Failure(msgspec.Struct, frozen=True, kw_only=True, tag="failed"):
    """A PiCloudError on its way back to the caller; ``kind`` is its class name."""

    kind: str
    code: str
    message: str
    retry_after: float | None = None
    """TooManyRequests' seconds to wait."""


def failure_of(error: PiCloudError) -> Failure:
    return Failure(
        kind=type(error).__name__,
        code=error.code,
        message=error.message,
        retry_after=getattr(error, "retry_after", None),
    )


def unwrap(result: T | Failure) -> T:
    """Return ``result``, or raise the PiCloudError a :class:`Failure` stands for."""
    if not isinstance(result, Failure):
        return result
    cls = getattr(errors, result.kind, None)
    if not (isinstance(cls, type) and issubclass(cls, PiCloudError)):
        cls = PiCloudError
    error = cls.__new__(cls)
    PiCloudError.__init__(error, result.message, code=result.code)
    if result.retry_after is not None:
        error.retry_after = result.retry_after  # type: ignore[attr-defined]  # TooManyRequests' own field
    raise error


async def guarded(work: Callable[[], Awaitable[T]]) -> T | Failure:
    """Run ``work`` inside an actor, turning PiCloudErrors into Failures."""
    try:
        return await work()
    except PiCloudError as e:
        return failure_of(e)


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
