"""Helpers shared by the test modules of this folder."""

from __future__ import annotations

import itertools
from concurrent.futures import Executor
from typing import Any

import msgspec

from picloud.actors.app_actor import AppActor, app_stream
from picloud.actors.control_plane import ControlPlane
from picloud.actors.invoker import Invoker
from picloud.actors.protocol import Done, HttpReply
from picloud.config import Settings
from picloud.domain.commands import AddRoute, Invoke, SaveScript
from picloud.domain.system import CreateApp
from picloud.events import EventMeta
from picloud.events.app import DispatchMode, RequestRecord
from picloud.scripting import AppInfo
from picloud.store import AppStore, EventLog

_ids = itertools.count()

HELLO = "return {hello = ctx.request.params.name}"


async def make_app(event_log: EventLog, slug: str = "app") -> AppInfo:
    plane = ControlPlane(event_log)
    await plane.catch_up()
    [recorded] = await plane.execute(CreateApp(slug=slug, name=slug), EventMeta())
    return AppInfo(id=recorded.event.app_id, slug=slug, name=slug)  # type: ignore[attr-defined]  # AppCreated


def make_actor(event_log: EventLog, app: AppInfo, **settings: Any) -> AppActor:
    """An actor of ``app`` with these settings; ``executor=`` gives it worker
    threads for the scripts that outrun their slice."""
    executor: Executor | None = settings.pop("executor", None)
    s = Settings(**settings)
    invoker = Invoker(app, s, executor=executor)
    return AppActor(app, store=AppStore(event_log, app.id), settings=s, invoker=invoker)


class Lua:
    """Runs Lua sources as one-off routes of one app's actor."""

    def __init__(self, actor: AppActor) -> None:
        self.actor = actor

    async def route(self, source: str, dispatch_mode: DispatchMode = "sync") -> str:
        name = f"s{next(_ids)}"
        saved = await self.actor.submit(SaveScript(name=name, source=source), 10)
        assert isinstance(saved, Done), saved
        route = AddRoute(
            script_id=saved.result.id,
            method="POST",
            path=f"/{name}",
            dispatch_mode=dispatch_mode,
        )
        added = await self.actor.submit(route, 10)
        assert isinstance(added, Done), added
        return str(added.result.id)

    async def call(self, route_id: str, body: Any = None) -> HttpReply:
        request = RequestRecord(method="POST", path="/", body=msgspec.json.encode(body))
        reply = await self.actor.submit(
            Invoke(execution_id=f"x{next(_ids)}", route_id=route_id, request=request),
            10,
        )
        assert isinstance(reply, HttpReply), reply
        return reply

    async def run(self, source: str, body: Any = None) -> Any:
        """The script's JSON answer; a failed script fails the test with its error."""
        reply = await self.call(await self.route(source), body)
        assert reply.status in (200, 204), await self.last_error()
        return msgspec.json.decode(reply.body) if reply.body else None

    async def fails(self, source: str) -> str:
        """The error a failing script recorded in the execution log."""
        reply = await self.call(await self.route(source))
        assert reply.status == 500, reply.body
        return await self.last_error()

    async def last_error(self) -> str:
        await self.actor.settled()  # a failed run wrote nothing: it answered first
        rows = await self.actor._log.read_stream(
            app_stream(self.actor.app.id), 0, 100_000
        )
        errors = [r.event.error for r in rows if getattr(r.event, "error", None)]  # type: ignore[attr-defined]
        return str(errors[-1]) if errors else ""
