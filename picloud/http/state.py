"""Typed application state shared by the handlers (``app[SERVICES]``)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from picloud.config import Settings
from picloud.events import EventMeta
from picloud.hosting.control_actor import ControlPlaneClient
from picloud.hosting.host_pool import HostPool
from picloud.http._observe import REQUEST_ID, new_request_id
from picloud.http.routing import Routing
from picloud.store import AdminStore, Database, EventLog

__all__ = ["ACTOR", "SERVICES", "BackgroundTasks", "Services", "command_meta"]

log = logging.getLogger(__name__)


class BackgroundTasks:
    """Owner of fire-and-forget work started by handlers (e.g. recording a 504)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background task failed", exc_info=task.exception())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    control: ControlPlaneClient
    hosts: HostPool
    routing: Routing
    tasks: BackgroundTasks

    @property
    def store(self) -> AdminStore:
        """What the admin API, auth and the dashboard read."""
        return self.db.admin

    @property
    def log(self) -> EventLog:
        return self.db.log

    def background(self, work: Coroutine[Any, Any, None]) -> None:
        self.tasks.spawn(work)


SERVICES = web.AppKey("services", Services)
ACTOR = web.RequestKey("actor", str)
"""Who the request acts as (``user:<id>``, ``key:<id>``), set by the auth check."""

_MAX_KEY = 200


def command_meta(request: web.Request) -> EventMeta:
    """Metadata for the events a request causes.

    The idempotency key is the client's ``Idempotency-Key`` header when given,
    else one made here, so that a retry after a lost answer records nothing
    twice. The correlation id is the request's id (``X-Request-Id``).
    """
    key = request.headers.get("Idempotency-Key", "")[:_MAX_KEY] or uuid.uuid4().hex
    return EventMeta(
        actor=request.get(ACTOR),
        correlation_id=request.get(REQUEST_ID) or new_request_id(),
        idempotency_key=key,
    )
