"""The direct channel between the front door and an AppHost: framed msgpack on TCP.

A plain Ray call per request costs about a millisecond of overhead (DESIGN.md),
so requests travel over one long-lived connection per host instead. Both ends
coalesce the frames produced in one event-loop iteration into one write, so
under load many requests share a syscall (the batching DESIGN.md asks for).
Ray still hosts, places and restarts the hosts; the channel only carries calls.

Guarantees: replies are matched to calls by id; when the connection is lost,
every call still waiting fails at once with ActorUnavailable (it may or may
not have run; commands carry idempotency keys for a safe retry).

Only peers that know the cluster secret are served: the host's first frame
is a random challenge, the client's first frame its HMAC under the secret;
a host closes a connection whose proof is wrong before reading any call.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import logging
import secrets
from collections.abc import Callable
from typing import cast

from picloud.actors.protocol import (
    Call,
    Reply,
    ReplyFrame,
    decode_call,
    decode_reply,
    encode_frame,
    failure_of,
)
from picloud.domain.commands import Command
from picloud.errors import ActorUnavailable, CommandTimeout
from picloud.event_loop import deadlines

log = logging.getLogger(__name__)

__all__ = ["ChannelClient", "ChannelServerProtocol", "Dispatch", "open_channel"]

_HEADER = 4
_CONTEXT = b"picloud-channel-v1:"
_MAX_FRAME = 64 * 1024 * 1024

Dispatch = Callable[[Call, Callable[[ReplyFrame], None]], None]


class _Framed(asyncio.Protocol):
    """Length-prefixed frames in both directions, writes coalesced per loop turn."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._out: list[bytes] = []
        self._flush_scheduled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # TCP only; uvloop's transports implement asyncio.Transport without
        # deriving from it, so this is a cast, not an isinstance check.
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= _HEADER:
            size = int.from_bytes(buffer[start : start + _HEADER], "big")
            if size > _MAX_FRAME:
                self._abort(f"frame of {size} bytes is too large")
                return
            end = start + _HEADER + size
            if len(buffer) < end:
                break
            self.frame_received(memoryview(buffer)[start + _HEADER : end].tobytes())
            start = end
        del buffer[:start]

    def frame_received(self, payload: bytes) -> None:
        raise NotImplementedError

    def send(self, frame: bytes) -> None:
        self._out.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self._out))
        self._out.clear()

    def _abort(self, reason: str) -> None:
        if self.transport is not None:
            self.transport.abort()


def _proof(secret: str, challenge: bytes) -> bytes:
    return hmac.new(secret.encode(), _CONTEXT + challenge, hashlib.sha256).digest()


class ChannelServerProtocol(_Framed):
    """The host's end: checks the peer's proof, then decodes calls and hands
    them to ``dispatch`` with a responder."""

    def __init__(self, dispatch: Dispatch, secret: str) -> None:
        super().__init__()
        self._dispatch = dispatch
        self._secret = secret
        self._challenge = secrets.token_bytes(32)
        self._proven = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.send(len(self._challenge).to_bytes(_HEADER, "big") + self._challenge)

    def frame_received(self, payload: bytes) -> None:
        if not self._proven:
            self._check_proof(payload)
            return
        self._dispatch(decode_call(payload), self._respond)

    def _check_proof(self, proof: bytes) -> None:
        if hmac.compare_digest(proof, _proof(self._secret, self._challenge)):
            self._proven = True
            return
        transport = self.transport
        peer = transport.get_extra_info("peername") if transport else None
        log.warning("channel from %s refused: no proof of the cluster secret", peer)
        self._abort("the peer does not know the cluster secret")

    def _respond(self, frame: ReplyFrame) -> None:
        self.send(encode_frame(frame))


class ChannelClient(_Framed):
    """The front door's end of one connection to one host."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Reply]] = {}
        self._deadlines = deadlines()
        self._secret = secret
        self.proven = asyncio.get_running_loop().create_future()
        """Done once the host's challenge is answered."""
        self.lost = asyncio.Event()

    @property
    def usable(self) -> bool:
        return not self.lost.is_set() and self.transport is not None

    def frame_received(self, payload: bytes) -> None:
        if not self.proven.done():
            proof = _proof(self._secret, payload)
            self.send(len(proof).to_bytes(_HEADER, "big") + proof)
            self.proven.set_result(None)
            return
        frame = decode_reply(payload)
        future = self._waiting.pop(frame.id, None)
        if future is not None and not future.done():
            future.set_result(frame.reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()
        if not self.proven.done():
            self.proven.set_exception(
                ActorUnavailable("the app's host closed the connection at once")
            )
        failure = failure_of(
            ActorUnavailable("the app's host went away during the call")
        )
        for future in self._waiting.values():
            if not future.done():
                future.set_result(failure)
        self._waiting.clear()

    async def call(self, app_id: str, command: Command, timeout_s: float) -> Reply:
        """Send one command and wait for its reply (at most ``timeout_s``)."""
        if not self.usable:
            raise ActorUnavailable("the connection to the app's host is closed")
        call_id = next(self._ids)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        self._waiting[call_id] = future
        self.send(encode_frame(Call(call_id, app_id, int(timeout_s * 1000), command)))
        # A deadline that fails the future, not asyncio.timeout or a timer of
        # its own: this is the hot path of every request.
        when = loop.time() + timeout_s
        deadline = self._deadlines.arm(when, _expire, future, timeout_s)
        try:
            return await future
        finally:
            self._deadlines.disarm(deadline)
            self._waiting.pop(call_id, None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _expire(future: asyncio.Future[Reply], timeout_s: float) -> None:
    if not future.done():
        future.set_exception(CommandTimeout(f"no reply within {timeout_s:g}s"))


async def open_channel(host: str, port: int, secret: str) -> ChannelClient:
    """A connection to the host at host:port, once it took our proof of
    ``secret``; ActorUnavailable if the host closes it first."""
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: ChannelClient(secret), host, port)
    await client.proven
    return client
