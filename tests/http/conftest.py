"""A real PiCloud server on loopback: real Postgres, real Ray, real aiohttp."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from picloud.config import Settings
from picloud.http.server import Server


class Api:
    """A thin JSON client: every call answers ``(status, decoded body)``."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = (
            raw
            if raw is not None
            else (None if body is None else msgspec.json.encode(body))
        )
        async with self.session.request(
            method, self.base + path, data=data, headers=headers
        ) as response:
            content = await response.read()
            if response.content_type == "application/json" and content:
                return response.status, msgspec.json.decode(content)
            return response.status, content.decode(errors="replace")


def server_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "http_port": 0,
        "ray_namespace": f"picloud-test-{uuid.uuid4().hex[:8]}",
        "db_pool_max": 4,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def server(database: str, ray_session: None) -> AsyncIterator[Server]:
    server = Server(server_settings(), database, owns_actors=True)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def api(server: Server) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, server.url)
