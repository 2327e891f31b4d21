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

import ray
from ray import exceptions as ray_errors

from picloud.actors.protocol import unwrap
from picloud.errors import ActorUnavailable, CommandTimeout

__all__ = ["call_remote", "find_actor"]

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


async def find_actor(name: str, *, namespace: str, seconds: float) -> Any:
    """The named actor's handle; ActorUnavailable if Ray knows none.

    Ray's lookup blocks on the GCS, so it runs on a thread.
    """
    try:
        async with asyncio.timeout(seconds):
            return await asyncio.to_thread(ray.get_actor, name, namespace=namespace)
    except TimeoutError as e:
        raise CommandTimeout(f"{name}: Ray did not answer within {seconds:g}s") from e
    except (ValueError, ray_errors.RayError) as e:  # ValueError: no such actor
        raise ActorUnavailable(f"{name}: no such actor") from e
