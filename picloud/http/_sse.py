"""Live tails as server-sent events: the answer's headers, the loop that
writes what commits, heartbeats while nothing does, and the end of every
tail when the server stops.

Used by ``…/events/stream`` and ``…/apps/{app}/executions/stream``; each
message carries the id a reconnecting EventSource resumes from
(``Last-Event-ID``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from picloud.http.state import SERVICES

__all__ = ["TAILS_CLOSING", "follow_live", "install_tails", "open_stream"]

TAILS_CLOSING = web.AppKey("tails_closing", asyncio.Event)
"""Set when the server stops: every live tail ends (else a stop would wait
for each open tail to time out)."""


async def open_stream(request: web.Request) -> web.StreamResponse:
    """Send the headers of an event stream; the caller writes the messages."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # proxies must not hold messages back
        }
    )
    await response.prepare(request)
    return response


async def follow_live(
    request: web.Request, response: web.StreamResponse, chunks: AsyncIterator[bytes]
) -> None:
    """Write each chunk of messages as it comes; an empty chunk is a quiet
    moment, and a heartbeat comment goes out after ``events_tail_heartbeat_s``
    of them. Ends when the server stops or the client goes away."""
    settings = request.app[SERVICES].settings
    closing = request.app[TAILS_CLOSING]
    heartbeat = float(settings.events_tail_heartbeat_s)
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    # The client going away ends the tail; there is no one to answer then.
    with contextlib.suppress(ConnectionResetError):
        async for chunk in chunks:
            transport = request.transport
            if closing.is_set() or transport is None or transport.is_closing():
                return
            if chunk:
                await response.write(chunk)
                quiet_since = loop.time()
            elif loop.time() - quiet_since >= heartbeat:
                await response.write(b": heartbeat\n\n")
                quiet_since = loop.time()


def install_tails(app: web.Application) -> None:
    """Give ``app`` the signal that ends its live tails when it shuts down."""
    closing = asyncio.Event()
    app[TAILS_CLOSING] = closing

    async def close(_: web.Application) -> None:
        closing.set()

    app.on_shutdown.append(close)
