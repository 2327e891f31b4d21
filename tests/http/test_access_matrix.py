"""Every admin endpoint, every kind of caller: 401, 404, 403 or through, as
specified.

The endpoints come from ``ENDPOINTS.endpoints``, so an endpoint added later
is in the matrix without anyone listing it; :mod:`tests.http.access_rules`
says, from the path alone, what it must need. An endpoint without a declared
capability, with another one than its path calls for, or acting on an app
without saying how to find it, fails here. A caller who holds nothing on the
app an endpoint acts on must get 404 as if it did not exist; one who holds
something there but not the capability, 403.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

import picloud.http.app  # noqa: F401  # registers every endpoint
from picloud.domain.access import ALL_SCOPES, Capability, Role, Scope
from picloud.domain.credentials import hash_password, new_api_key
from picloud.domain.identity import CreateApiKey, CreateUser, SetMember
from picloud.domain.records import KeyRecord, UserRecord
from picloud.events import EventMeta
from picloud.http._api import ENDPOINTS, Endpoint
from picloud.server import Server
from tests.http.access_rules import Unknown, expected, holds
from tests.http.helpers import Api, Identity, create_identity

_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")  # {name} or {name:regex}
_META = EventMeta(actor="matrix")
_counter = itertools.count()


def test_every_endpoint_declares_the_capability_its_path_calls_for() -> None:
    wrong = []
    for e in ENDPOINTS.endpoints:
        try:
            need, in_app = expected(e.method, e.path)
        except Unknown as problem:
            wrong.append(str(problem))
            continue
        if e.needs != need:
            wrong.append(f"{e.method} {e.path}: declares {e.needs}, should need {need}")
        if need is not None and e.app_scoped != in_app:
            how = "is" if e.app_scoped else "is not"
            wrong.append(f"{e.method} {e.path}: {how} app-scoped (app_of= or {{app}})")
    assert not wrong, "\n".join(wrong)


# -- the callers ---------------------------------------------------------------------


@dataclass
class Caller:
    name: str
    headers: dict[str, str]
    identity: Identity | None = None
    admin: bool = False
    role: Role | None = None
    scopes: frozenset[Scope] | None = None
    """None: a person signed in by session cookie."""
    bound_elsewhere: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def allowed(self, e: Endpoint) -> bool:
        return self.identity is not None and e.needs in self._held(e.app_scoped)

    def sees_the_app(self) -> bool:
        """Whether the caller holds anything on the target app (else it is
        answered as absent)."""
        return self.identity is not None and bool(self._held(in_app=True))

    def _held(self, in_app: bool) -> frozenset[Capability]:
        return holds(
            admin=self.admin,
            role=self.role,
            in_app=in_app,
            scopes=self.scopes,
            bound_elsewhere=self.bound_elsewhere,
        )


async def session_headers(base: str, who: Identity) -> dict[str, str]:
    """Sign in as ``who``; the headers a browser would send (cookie + CSRF)."""
    jar = aiohttp.DummyCookieJar()
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        body = {"username": who.username, "password": who.password}
        async with session.post(f"{base}/api/v1/auth/login", json=body) as response:
            assert response.status == 200, await response.text()
            token = response.cookies["picloud_session"].value
            csrf = (await response.json())["csrf_token"]
    return {"Cookie": f"picloud_session={token}", "X-CSRF-Token": csrf}


@dataclass
class World:
    server: Server
    admin_api: Api
    app_id: str
    other_app_id: str
    password_hash: str
    callers: list[Caller]

    async def run(self, command: Any, kind: type[Any]) -> Any:
        assert self.server.services is not None
        return await self.server.services.control.execute_as(kind, command, _META)

    async def throwaway_user(self) -> UserRecord:
        name = f"tmp{next(_counter)}"
        user: UserRecord = await self.run(
            CreateUser(username=name, password_hash=self.password_hash), UserRecord
        )
        return user

    async def key_of(self, user_id: str) -> str:
        made = new_api_key()
        command = CreateApiKey(
            user=user_id,
            name="tmp",
            prefix=made.prefix,
            secret_hash=made.hash,
            scopes=("app:read",),
        )
        key: KeyRecord = await self.run(command, KeyRecord)
        return key.id

    async def fresh_app(self) -> str:
        """An app like the target one, with the same members, to be deleted."""
        status, app = await self.admin_api.call(
            "POST",
            "/api/v1/admin/apps",
            {"slug": f"doomed{next(_counter)}", "name": "D"},
        )
        assert status == 201, app
        for caller in self.callers:
            if caller.role is not None and caller.identity is not None:
                command = SetMember(
                    app=app["id"], user=caller.identity.user_id, role=caller.role
                )
                await self.run(command, object)
        return str(app["id"])


# -- what a request needs in its path and body --------------------------------------

Recipe = Callable[[World, Caller], Awaitable[str]]


async def _script(world: World, _: Caller) -> str:
    status, script = await world.admin_api.call(
        "POST",
        f"/api/v1/admin/apps/{world.app_id}/scripts",
        {"name": f"s{next(_counter)}", "source": "return {}"},
    )
    assert status == 201, script
    return str(script["id"])


async def _route(world: World, caller: Caller) -> str:
    script = await _script(world, caller)
    status, route = await world.admin_api.call(
        "POST",
        f"/api/v1/admin/scripts/{script}/routes",
        {"method": "GET", "path": f"/r{next(_counter)}"},
    )
    assert status == 201, route
    return str(route["id"])


async def _trigger(world: World, caller: Caller) -> str:
    script = await _script(world, caller)
    status, trigger = await world.admin_api.call(
        "POST",
        f"/api/v1/admin/apps/{world.app_id}/triggers/kv",
        {"script_id": script, "collection": f"c{next(_counter)}"},
    )
    assert status == 201, trigger
    return str(trigger["id"])


async def _user(world: World, _: Caller) -> str:
    return (await world.throwaway_user()).id


async def _member(world: World, _: Caller) -> str:
    user = await world.throwaway_user()
    command = SetMember(app=world.app_id, user=user.id, role=Role.VIEWER)
    await world.run(command, object)
    return user.id


async def _own_key(world: World, caller: Caller) -> str:
    who = caller.identity
    user = who.user_id if who is not None else (await world.throwaway_user()).id
    return await world.key_of(user)


async def _any_key(world: World, _: Caller) -> str:
    return await world.key_of((await world.throwaway_user()).id)


async def _first_version(_world: World, _caller: Caller) -> str:
    return "1"  # every script the recipes make has its version 1


# (method or "*", path pattern, placeholder) → recipe; first match wins.
RECIPES: list[tuple[str, str, str, Recipe]] = [
    ("*", "/api/v1/admin/scripts/", "id", _script),
    ("*", "/api/v1/admin/scripts/{id}/versions/", "version", _first_version),
    ("*", "/api/v1/admin/routes/", "id", _route),
    ("*", "/api/v1/admin/triggers/", "id", _trigger),
    ("*", "/api/v1/admin/apps/{app}/members/", "user", _member),
    ("*", "/api/v1/admin/users/", "user", _user),
    ("*", "/api/v1/admin/keys/", "id", _any_key),
    ("*", "/api/v1/auth/keys/", "id", _own_key),
]


def _body(e: Endpoint, caller: Caller) -> Any:
    n = next(_counter)
    who = caller.identity
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/api/v1/admin/apps"): {"slug": f"made{n}", "name": "M"},
        ("PATCH", "/api/v1/admin/apps/{app}"): {"name": f"Renamed {n}"},
        ("POST", "/api/v1/admin/users"): {"username": f"new{n}", "password": "x" * 12},
        ("PATCH", "/api/v1/admin/users/{user}"): {"admin": False},
        ("PUT", "/api/v1/admin/apps/{app}/members/{user}"): {"role": "editor"},
        ("POST", "/api/v1/auth/keys"): {"name": "m", "scopes": ["app:read"]},
        ("PUT", "/api/v1/auth/password"): {
            "current_password": who.password if who else "x" * 8,
            "new_password": (who.password if who else "x") + "!",
        },
        ("POST", "/api/v1/admin/apps/{app}/scripts"): {
            "name": f"s{n}",
            "source": "return {}",
        },
        ("PUT", "/api/v1/admin/scripts/{id}"): {"source": "return {ok = true}"},
        # a dry run: the matrix's app keeps what the other endpoints made
        ("POST", "/api/v1/admin/apps/{app}/deploy"): {"dry_run": True, "prune": False},
        ("POST", "/api/v1/admin/scripts/{id}/routes"): {
            "method": "GET",
            "path": f"/made{n}",
        },
    }
    if (e.method, e.path) in bodies:
        return bodies[(e.method, e.path)]
    return {} if e.method in ("POST", "PUT", "PATCH") else None


KNOWN_2XX = frozenset(
    {
        ("POST", "/api/v1/admin/apps"),
        ("GET", "/api/v1/admin/apps"),
        ("GET", "/api/v1/admin/apps/{app}"),
        ("PATCH", "/api/v1/admin/apps/{app}"),
        ("DELETE", "/api/v1/admin/apps/{app}"),
        ("GET", "/api/v1/admin/apps/{app}/members"),
        ("PUT", "/api/v1/admin/apps/{app}/members/{user}"),
        ("DELETE", "/api/v1/admin/apps/{app}/members/{user}"),
        ("GET", "/api/v1/admin/users"),
        ("POST", "/api/v1/admin/users"),
        ("GET", "/api/v1/admin/users/{user}"),
        ("PATCH", "/api/v1/admin/users/{user}"),
        ("DELETE", "/api/v1/admin/users/{user}"),
        ("GET", "/api/v1/admin/users/{user}/keys"),
        ("DELETE", "/api/v1/admin/keys/{id}"),
        ("GET", "/api/v1/auth/me"),
        ("GET", "/api/v1/auth/keys"),
        ("POST", "/api/v1/auth/keys"),
        ("DELETE", "/api/v1/auth/keys/{id}"),
        ("PUT", "/api/v1/auth/password"),
        ("GET", "/api/v1/admin/events"),
        ("GET", "/api/v1/admin/events/stream"),
        ("GET", "/api/v1/admin/apps/{app}/executions/stream"),
    }
)
"""Endpoints whose allowed calls here must succeed; the rest must pass the check."""


async def _path(world: World, e: Endpoint, caller: Caller) -> str:
    if e.path.startswith("/api/v1/admin/events"):
        return f"{e.path}?app={world.app_id}"  # the app it acts on
    path = e.path
    for match in _PARAM.finditer(e.path):
        name = match.group(1)
        if name == "app":
            value = (
                await world.fresh_app()
                if e.method == "DELETE" and (e.path == "/api/v1/admin/apps/{app}")
                else world.app_id
            )
        else:
            value = await _recipe(world, e, caller, name)
        path = path.replace(match.group(0), value, 1)
    return path


async def _recipe(world: World, e: Endpoint, caller: Caller, name: str) -> str:
    for method, prefix, placeholder, recipe in RECIPES:
        if (
            method in ("*", e.method)
            and e.path.startswith(prefix)
            and (placeholder == name)
        ):
            return await recipe(world, caller)
    if e.app_of is not None:
        raise AssertionError(
            f"{e.method} {e.path}: finds its app from {{{name}}}; add a recipe for it "
            "to RECIPES in tests/http/test_access_matrix.py"
        )
    return "matrix-x"  # inside a named app any value reaches the access check


# -- the matrix ---------------------------------------------------------------------


@pytest.fixture
async def world(server: Server, api: Api) -> World:
    """App ``target`` with a viewer, an editor and an owner; app ``elsewhere``;
    an admin person; an admin's keys of each single scope and one bound to
    ``elsewhere``."""
    hashed = await asyncio.to_thread(hash_password, "throwaway-password")
    ids = {}
    for slug in ("target", "elsewhere"):
        status, app = await api.call(
            "POST", "/api/v1/admin/apps", {"slug": slug, "name": slug}
        )
        assert status == 201, app
        ids[slug] = app["id"]
    world = World(server, api, ids["target"], ids["elsewhere"], hashed, [])
    world.callers.append(Caller("no credentials", {}))
    outsider = await create_identity(server, "outsider", scopes=None)
    headers = await session_headers(server.url, outsider)
    world.callers.append(Caller("a person with no role", headers, outsider))
    for role in Role:
        person = await create_identity(server, f"the-{role.value}", scopes=None)
        await world.run(
            SetMember(app=world.app_id, user=person.user_id, role=role), object
        )
        headers = await session_headers(server.url, person)
        world.callers.append(Caller(role.value, headers, person, role=role))
    boss = await create_identity(server, "boss", admin=True, scopes=None)
    headers = await session_headers(server.url, boss)
    world.callers.append(Caller("admin", headers, boss, admin=True))
    holder = await create_identity(server, "keyholder", admin=True, scopes=None)
    for scope in Scope:
        key = await _key(world, holder, frozenset({scope}), app=None)
        world.callers.append(
            Caller(
                f"key {scope.value}",
                key.bearer,
                key,
                admin=True,
                scopes=key_scopes(scope),
            )
        )
    bound = await _key(world, holder, ALL_SCOPES, app=world.other_app_id)
    world.callers.append(
        Caller(
            "key bound to another app",
            bound.bearer,
            bound,
            admin=True,
            scopes=ALL_SCOPES,
            bound_elsewhere=True,
        )
    )
    return world


def key_scopes(scope: Scope) -> frozenset[Scope]:
    return frozenset({scope})


async def _key(
    world: World, holder: Identity, scopes: frozenset[Scope], *, app: str | None
) -> Identity:
    made = new_api_key()
    command = CreateApiKey(
        user=holder.user_id,
        name="matrix",
        prefix=made.prefix,
        secret_hash=made.hash,
        scopes=tuple(sorted(scopes)),
        app=app,
    )
    record: KeyRecord = await world.run(command, KeyRecord)
    return Identity(
        user_id=holder.user_id,
        username=holder.username,
        password=holder.password,
        key=made.secret,
        key_id=record.id,
    )


def _judge(e: Endpoint, caller: Caller, status: int, body: Any) -> str | None:
    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
    if caller.identity is None:
        ok = status == 401 and code == "unauthenticated"
    elif e.app_scoped and not caller.sees_the_app():
        ok = status == 404 and code == "not_found"
    elif not caller.allowed(e):
        ok = status == 403 and code == "forbidden"
    elif (e.method, e.path) in KNOWN_2XX:
        ok = 200 <= status < 300
    else:
        ok = status < 500 and status not in (401, 403)
    return None if ok else f"{e.method} {e.path} as {caller.name}: {status} {body}"


def _matrix_endpoints() -> list[Endpoint]:
    checked = [e for e in ENDPOINTS.endpoints if e.needs is not None]
    # Deleting the target app last keeps the others' fixtures in place.
    return sorted(
        checked,
        key=lambda e: (
            e.method == "DELETE" and e.path == "/api/v1/admin/apps/{app}",
            e.path,
        ),
    )


@pytest.mark.timeout(900)
async def test_every_admin_endpoint_answers_each_caller_as_specified(
    world: World,
) -> None:
    failures: list[str] = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        client = Api(session, world.server.url)
        for e in _matrix_endpoints():
            # Refused callers first: they must change nothing for the others.
            for caller in sorted(world.callers, key=lambda c: c.allowed(e)):
                path = await _path(world, e, caller)
                body = _body(e, caller)
                if e.stream:
                    status, answer = await _opened(session, world, path, caller)
                else:
                    status, answer = await client.call(
                        e.method, path, body, headers=caller.headers
                    )
                problem = _judge(e, caller, status, answer)
                if problem:
                    failures.append(problem)
                elif e.path == "/api/v1/auth/password" and status == 200:
                    await _signed_in_again(world, caller, body["new_password"])
    assert not failures, f"{len(failures)} wrong answers:\n" + "\n".join(failures)


async def _opened(
    session: aiohttp.ClientSession, world: World, path: str, caller: Caller
) -> tuple[int, Any]:
    """A live tail never ends by itself: its status (and error body), then
    hang up."""
    async with session.get(world.server.url + path, headers=caller.headers) as r:
        if r.status >= 400:
            return r.status, await r.json()
        return r.status, None


async def _signed_in_again(world: World, caller: Caller, password: str) -> None:
    """A password change ended the caller's session: sign in with the new one."""
    assert caller.identity is not None
    caller.identity = Identity(
        user_id=caller.identity.user_id,
        username=caller.identity.username,
        password=password,
    )
    caller.headers = await session_headers(world.server.url, caller.identity)
