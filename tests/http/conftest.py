"""A real PiCloud server on loopback: real Postgres, real Ray, real aiohttp.

The ``api`` client is an instance admin with an API key of every scope;
``anon`` sends no credentials; :func:`create_identity` makes more principals.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
import pytest
from multidict import CIMultiDict

from picloud.config import Settings
from picloud.domain.access import ALL_SCOPES, Scope
from picloud.domain.credentials import hash_password, new_api_key
from picloud.domain.identity import CreateApiKey, CreateUser
from picloud.domain.records import KeyRecord, UserRecord
from picloud.events import EventMeta
from picloud.server import Server
from tests.conftest import create_database, drop_database


class Api:
    """A thin JSON client: every call answers ``(status, decoded body)``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.session = session
        self.base = base
        self.headers = headers or {}
        self.last_headers: CIMultiDict[str] = CIMultiDict()

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
        sent = {**self.headers, **(headers or {})}
        async with self.session.request(
            method, self.base + path, data=data, headers=sent
        ) as response:
            content = await response.read()
            self.last_headers = CIMultiDict(response.headers)
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
def server_overrides() -> dict[str, Any]:
    """Settings for the test's server; a test module overrides this fixture."""
    return {}


@pytest.fixture
async def server(
    database: str, ray_session: None, server_overrides: dict[str, Any]
) -> AsyncIterator[Server]:
    server = Server(server_settings(**server_overrides), database, owns_actors=True)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
def module_overrides() -> dict[str, Any]:
    """Settings for a module's shared server; a test module overrides this."""
    return {}


@pytest.fixture(scope="module")
async def shared_server(
    pg_server: str,
    template_db: str,
    ray_session: None,
    module_overrides: dict[str, Any],
) -> AsyncIterator[Server]:
    """One server (and database) for a whole module, for tests that keep to
    their own apps: starting a server costs seconds, mostly Ray actors."""
    dsn = await create_database(pg_server, template_db)
    server = Server(server_settings(**module_overrides), dsn, owns_actors=True)
    await server.start()
    yield server
    await server.stop()
    await drop_database(pg_server, dsn)


@pytest.fixture(scope="module")
async def shared_admin(shared_server: Server) -> Identity:
    return await create_identity(shared_server, "admin", admin=True)


@dataclass(frozen=True)
class Identity:
    """A user made for a test, with the password and (if any) key secret."""

    user_id: str
    username: str
    password: str
    key: str | None = None
    key_id: str | None = None

    @property
    def bearer(self) -> dict[str, str]:
        assert self.key is not None
        return {"Authorization": f"Bearer {self.key}"}


async def create_identity(
    server: Server,
    username: str,
    *,
    admin: bool = False,
    scopes: frozenset[Scope] | None = ALL_SCOPES,
    app: str | None = None,
) -> Identity:
    """A user (and, unless ``scopes`` is None, a key) made through the ControlPlane."""
    assert server.services is not None
    control = server.services.control
    meta = EventMeta(actor="test")
    password = f"pw-{uuid.uuid4().hex}"
    hashed = await asyncio.to_thread(hash_password, password)
    user = await control.execute_as(
        UserRecord,
        CreateUser(username=username, password_hash=hashed, admin=admin),
        meta,
    )
    if scopes is None:
        return Identity(user_id=user.id, username=user.username, password=password)
    made = new_api_key()
    key = await control.execute_as(
        KeyRecord,
        CreateApiKey(
            user=user.id,
            name=f"{username} test key",
            prefix=made.prefix,
            secret_hash=made.hash,
            scopes=tuple(sorted(scopes)),
            app=app,
        ),
        meta,
    )
    return Identity(
        user_id=user.id,
        username=user.username,
        password=password,
        key=made.secret,
        key_id=key.id,
    )


@pytest.fixture
async def admin(server: Server) -> Identity:
    """An instance admin with a key of every scope, bound to no app."""
    return await create_identity(server, "admin", admin=True)


@pytest.fixture
async def api(server: Server, admin: Identity) -> AsyncIterator[Api]:
    """A client signed in as :func:`admin` by its bearer key."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, server.url, admin.bearer)


@pytest.fixture
async def anon(server: Server) -> AsyncIterator[Api]:
    """A client without credentials."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, server.url)
