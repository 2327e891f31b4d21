"""Typed application state shared by the handlers (``app[SERVICES]``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from picloud.actors.control_actor import ControlPlaneClient
from picloud.config import Settings
from picloud.events import EventMeta
from picloud.store import EventLog

__all__ = ["SERVICES", "Services", "command_meta"]


@dataclass(frozen=True)
class Services:
    settings: Settings
    pool: asyncpg.Pool
    log: EventLog
    control: ControlPlaneClient


SERVICES = web.AppKey("services", Services)

_MAX_KEY = 200


def command_meta(request: web.Request) -> EventMeta:
    """Metadata for the events a request causes.

    The idempotency key is the client's ``Idempotency-Key`` header when given,
    else one made here, so that a retry after a lost answer records nothing twice.
    """
    key = request.headers.get("Idempotency-Key", "")[:_MAX_KEY] or uuid.uuid4().hex
    return EventMeta(
        actor=request.get("principal_id"),
        correlation_id=request.headers.get("X-Request-Id", uuid.uuid4().hex)[:_MAX_KEY],
        idempotency_key=key,
    )
