"""Errors across a process boundary: the one choke point for Ray's exceptions.

Actor methods never let a PiCloudError escape as a Ray exception (Ray would
wrap it and may fail to rebuild classes whose constructors take other
arguments); they return a :class:`Failure` instead, which :func:`unwrap`
raises again on the caller's side as the same PiCloudError class.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from ray import exceptions as ray_errors

from picloud import errors
from picloud.errors import ActorUnavailable, CommandTimeout, PiCloudError

__all__ = ["Failure", "call_remote", "failure_of", "guarded", "unwrap"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class Failure(msgspec.Struct, frozen=True, kw_only=True, tag="failed"):
    """A PiCloudError on its way back to the caller; ``kind`` is its class name."""

    kind: str
    code: str
    message: str


def failure_of(error: PiCloudError) -> Failure:
    return Failure(kind=type(error).__name__, code=error.code, message=error.message)


def unwrap(result: T | Failure) -> T:
    """Return ``result``, or raise the PiCloudError a :class:`Failure` stands for."""
    if not isinstance(result, Failure):
        return result
    cls = getattr(errors, result.kind, None)
    if not (isinstance(cls, type) and issubclass(cls, PiCloudError)):
        cls = PiCloudError
    error = cls.__new__(cls)
    PiCloudError.__init__(error, result.message, code=result.code)
    raise error


async def guarded(work: Callable[[], Awaitable[T]]) -> T | Failure:
    """Run ``work`` inside an actor, turning PiCloudErrors into Failures."""
    try:
        return await work()
    except PiCloudError as e:
        return failure_of(e)


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
