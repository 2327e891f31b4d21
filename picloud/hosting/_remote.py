"""Ray calls: the one choke point for Ray's exceptions.

Actor methods never let a PiCloudError escape as a Ray exception (Ray would
wrap it and may fail to rebuild classes whose constructors take other
arguments); they return a :class:`~picloud.actors.protocol.Failure` instead,
which :func:`call_remote` raises again on the caller's side as the same
PiCloudError class.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from ray import exceptions as ray_errors

from picloud.actors.protocol import unwrap
from picloud.errors import ActorUnavailable, CommandTimeout

__all__ = ["call_remote"]

log = logging.getLogger(__name__)


async def call_remote(ref: Awaitable[Any], *, what: str, seconds: float) -> Any:
    """Await a Ray object ref; Ray's failures become ActorUnavailable/CommandTimeout."""
    try:
        async with asyncio.timeout(seconds):
            result = await ref
    except TimeoutError as e:
        raise CommandTimeout(f"{what}: no answer within {seconds:g}s") from e
    except ray_errors.RayError as e:
        log.warning("%s failed in Ray: %s", what, e)
        raise ActorUnavailable(f"{what}: actor unavailable ({type(e).__name__})") from e
    return unwrap(result)
