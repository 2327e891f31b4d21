"""A real PiCloud server on loopback: real Postgres, real Ray, real aiohttp.

The ``api`` client is an instance admin with an API key of every scope;
``anon`` sends no credentials; :func:`create_identity` makes more principals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from picloud.server import Server
from tests.helpers import create_database, drop_database
from tests.http.helpers import Api, Identity, create_identity, server_settings


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    """Settings for the test's server; a test module overrides this fixture."""
    return {}


def _shared(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("shared_server") is not None


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Server:
    """The test's own server; in a module marked ``shared_server``, the
    module's (for tests that keep to their own apps)."""
    name = "shared_server" if _shared(request) else "own_server"
    found: Server = request.getfixturevalue(name)
    return found


@pytest.fixture
async def own_server(
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


@pytest.fixture
def admin(request: pytest.FixtureRequest) -> Identity:
    """An instance admin with a key of every scope, bound to no app (the
    shared server's one in a module marked ``shared_server``)."""
    name = "shared_admin" if _shared(request) else "own_admin"
    found: Identity = request.getfixturevalue(name)
    return found


@pytest.fixture
async def own_admin(server: Server) -> Identity:
    return await create_identity(server, "admin", admin=True)


@pytest.fixture
async def api(server: Server, admin: Identity) -> AsyncIterator[Api]:
    """A client signed in as :func:`admin` by its bearer key."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, server.url, admin.bearer, apps_base=server.apps_url)


@pytest.fixture
async def anon(server: Server) -> AsyncIterator[Api]:
    """A client without credentials."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, server.url, apps_base=server.apps_url)
