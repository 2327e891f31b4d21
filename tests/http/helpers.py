"""Helpers shared by the test modules of this folder."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import msgspec
from multidict import CIMultiDict

from picloud.config import Settings
from picloud.domain.access import ALL_SCOPES, Scope
from picloud.domain.credentials import hash_password, new_api_key
from picloud.domain.identity import CreateApiKey, CreateUser
from picloud.domain.records import KeyRecord, UserRecord
from picloud.events import EventMeta
from picloud.server import Server


class Api:
    """A thin JSON client: every call answers ``(status, decoded body)``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base: str,
        headers: dict[str, str] | None = None,
        *,
        apps_base: str | None = None,
    ) -> None:
        """``base`` is the admin listener; paths under ``/apps/`` go to
        ``apps_base``, the apps listener (another origin)."""
        self.session = session
        self.base = base
        self.apps_base = apps_base or base
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
        base = self.apps_base if path.startswith("/apps/") else self.base
        async with self.session.request(
            method, base + path, data=data, headers=sent
        ) as response:
            content = await response.read()
            self.last_headers = CIMultiDict(response.headers)
            if response.content_type == "application/json" and content:
                return response.status, msgspec.json.decode(content)
            return response.status, content.decode(errors="replace")


def server_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "http_port": 0,
        "apps_port": 0,
        "ray_namespace": f"picloud-test-{uuid.uuid4().hex[:8]}",
        "db_pool_max": 4,
    }
    values.update(overrides)
    return Settings(**values)


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


async def make_app(api: Api, slug: str) -> dict[str, Any]:
    status, app = await api.call(
        "POST", "/api/v1/admin/apps", {"slug": slug, "name": slug}
    )
    assert status == 201, app
    made: dict[str, Any] = app
    return made


async def make_script(
    api: Api, slug: str, source: str, name: str = "main", **extra: Any
) -> dict[str, Any]:
    status, script = await api.call(
        "POST",
        f"/api/v1/admin/apps/{slug}/scripts",
        {"name": name, "source": source, **extra},
    )
    assert status == 201, script
    made: dict[str, Any] = script
    return made


async def make_route(
    api: Api, slug: str, source: str, method: str = "GET", path: str = "/", **route: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    script = await make_script(api, slug, source, route.pop("name", "main"))
    status, created = await api.call(
        "POST",
        f"/api/v1/admin/scripts/{script['id']}/routes",
        {"method": method, "path": path, **route},
    )
    assert status == 201, created
    return script, created


async def login(
    base: str, username: str, password: str, headers: dict[str, str] | None = None
) -> Login:
    jar = aiohttp.DummyCookieJar()
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        body = {"username": username, "password": password}
        async with session.post(
            f"{base}/api/v1/auth/login", json=body, headers=headers
        ) as response:
            cookies: SimpleCookie = SimpleCookie()
            for header in response.headers.getall("Set-Cookie", []):
                cookies.load(header)
            return Login(
                response.status,
                await response.json(),
                cookies,
                response.headers.get("Retry-After"),
            )


@dataclass
class Login:
    status: int
    body: Any
    cookies: SimpleCookie
    retry_after: str | None

    @property
    def headers(self) -> dict[str, str]:
        """What a browser sends afterwards: the cookie and the CSRF header."""
        token = self.cookies["picloud_session"].value
        return {
            "Cookie": f"picloud_session={token}",
            "X-CSRF-Token": self.body["csrf_token"],
        }


@dataclass(frozen=True)
class RawAnswer:
    """An HTTP answer read off a raw socket."""

    status: int
    headers: dict[str, str]
    """Names lower-cased."""
    body: bytes
    seconds: float
    """From sending the request to the end of the answer."""

    def json(self) -> Any:
        assert self.headers.get("content-type", "").startswith("application/json")
        return msgspec.json.decode(self.body)


async def raw_exchange(
    server: Server,
    data: bytes,
    *,
    within: float = 10.0,
    until_closed: bool = False,
    apps: bool = False,
) -> RawAnswer:
    """Send ``data`` as it is (no client fixes it up) to ``server`` (its
    apps listener with ``apps``) and read the answer within ``within``
    seconds; with ``until_closed``, also wait (within the same time) for the
    server to close the connection."""
    port = server.apps_port if apps else server.port
    assert port is not None
    host = server.settings.http_host
    reader, writer = await asyncio.open_connection(host, port)
    clock = asyncio.get_running_loop().time
    started = clock()
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(within):
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in filter(None, lines):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            seconds = clock() - started
            if until_closed:
                assert await reader.read() == b""
    finally:
        writer.close()
    return RawAnswer(int(status_line.split()[1]), headers, body, seconds)


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 15.0
) -> None:
    """Wait until ``check()`` is true, polling; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
