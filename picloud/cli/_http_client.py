"""The CLI as a client of a running server's admin API (``PICLOUD_URL``,
``PICLOUD_API_KEY``): the commands that act on a live app (deploy, pull,
rollback, apps and scripts lists, logs) go through the API, so they get
its checks, its capability rules and its atomicity, never the database's
back door. :meth:`AdminClient.events` follows a server-sent events stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from picloud.config import Settings
from picloud.errors import PiCloudError

__all__ = ["AdminClient", "ApiError", "ServerEvent", "admin_client"]

_TIMEOUT = aiohttp.ClientTimeout(total=120, connect=10)
# A live stream lasts as long as its reader wants; the server's heartbeats
# keep it open.
_STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_read=None)


@dataclass(frozen=True)
class ServerEvent:
    """One message of a server-sent events stream."""

    data: str
    event: str = "message"
    id: str | None = None


class ApiError(PiCloudError):
    """The server refused a request: its status and its own message."""

    code = "api_error"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{message} (HTTP {status})")
        self.status = status


class AdminClient:
    """JSON calls to ``/api/v1/admin`` with the configured key."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self._session = session
        self._base = base.rstrip("/")

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """The decoded JSON answer; ApiError for any status ≥ 400."""
        data = None if body is None else msgspec.json.encode(body)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            async with self._session.request(
                method, self._base + path, data=data, headers=headers
            ) as response:
                raw = await response.read()
                if response.status >= 400:
                    raise ApiError(response.status, _message(raw))
                return msgspec.json.decode(raw) if raw else None
        except aiohttp.ClientConnectionError as e:
            raise self._unreachable(e) from None

    @asynccontextmanager
    async def events(
        self, path: str, *, last_event_id: str | None = None
    ) -> AsyncIterator[AsyncIterator[ServerEvent]]:
        """Open the event stream at ``path`` (ApiError for a status ≥ 400);
        inside, iterate its messages as they come. Comments (heartbeats) are
        skipped; the iteration ends when the server closes the stream."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        try:
            async with self._session.get(
                self._base + path, headers=headers, timeout=_STREAM_TIMEOUT
            ) as response:
                if response.status >= 400:
                    raise ApiError(response.status, _message(await response.read()))
                yield _messages(response.content)
        except aiohttp.ClientConnectionError as e:
            raise self._unreachable(e) from None

    def _unreachable(self, e: Exception) -> PiCloudError:
        return PiCloudError(
            f"cannot reach PiCloud at {self._base} ({e}); is it running? (PICLOUD_URL)"
        )

    async def get(self, path: str) -> Any:
        return await self.call("GET", path)

    async def post(self, path: str, body: Any) -> Any:
        return await self.call("POST", path, body)


async def _messages(content: aiohttp.StreamReader) -> AsyncIterator[ServerEvent]:
    """The messages of an event stream (the WHATWG parsing rules, minus retry)."""
    data: list[str] = []
    event = "message"
    last_id: str | None = None
    async for raw in content:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if data:
                yield ServerEvent("\n".join(data), event, last_id)
            data, event = [], "message"
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value or "message"
        elif name == "id":
            last_id = value


def _message(raw: bytes) -> str:
    try:
        return str(msgspec.json.decode(raw)["error"]["message"])
    except (msgspec.DecodeError, KeyError, TypeError):
        return raw[:200].decode(errors="replace") or "no answer"


@asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AdminClient]:
    """A client of the server ``settings`` name (``PICLOUD_URL``, else this
    machine's admin port), sending ``PICLOUD_API_KEY``."""
    if not settings.api_key:
        raise PiCloudError(
            "set PICLOUD_API_KEY to an API key (picloud admin create-key) to talk "
            "to the server"
        )
    base = settings.url or f"http://127.0.0.1:{settings.http_port}"
    headers = {"Authorization": f"Bearer {settings.api_key}"}
    async with aiohttp.ClientSession(headers=headers, timeout=_TIMEOUT) as session:
        yield AdminClient(session, base)
