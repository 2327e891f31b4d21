"""The CLI as a client of a running server's admin API (``PICLOUD_URL``,
``PICLOUD_API_KEY``): the commands that act on a live app (deploy, pull,
rollback, apps and scripts lists) go through the API, so they get its
checks, its capability rules and its atomicity, never the database's back
door."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import msgspec

from picloud.config import Settings
from picloud.errors import PiCloudError

__all__ = ["AdminClient", "ApiError", "admin_client"]

_TIMEOUT = aiohttp.ClientTimeout(total=120, connect=10)


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
            raise PiCloudError(
                f"cannot reach PiCloud at {self._base} ({e}); is it running? "
                "(PICLOUD_URL)"
            ) from None

    async def get(self, path: str) -> Any:
        return await self.call("GET", path)

    async def post(self, path: str, body: Any) -> Any:
        return await self.call("POST", path, body)


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
