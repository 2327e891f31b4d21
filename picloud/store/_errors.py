"""The one place where asyncpg's exceptions become PiCloud's.

A client never sees the driver's text: it gets StoreUnavailable ("the
database is unavailable; retry", with a short cause of ours) or a StoreError
that names the operation and the SQLSTATE. The driver's own words go to the
log, at most once per cause every few seconds, so an outage does not flood it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from asyncpg import exceptions as pg

from picloud.errors import StoreError, StoreUnavailable, UnstorableValue

__all__ = ["translate_errors", "unavailable"]

log = logging.getLogger(__name__)

_LOG_EVERY_S = 5.0
_last_logged: dict[str, float] = {}

_NOT_ACCEPTING = {
    "starting up": "the database is starting up",
    "shutting down": "the database is shutting down",
    "recovery": "the database is recovering",
}


def _cause(error: BaseException) -> str | None:
    """Why the database is out of reach, in our words; None if it answered."""
    match error:
        case ConnectionRefusedError() | FileNotFoundError():
            # A Unix socket that is gone means no server, as a refusal does.
            return "connection refused"
        case TimeoutError():
            return "no answer in time"
        case pg.CannotConnectNowError():
            text = str(error)
            for words, cause in _NOT_ACCEPTING.items():
                if words in text:
                    return cause
            return "the database is not accepting connections"
        case pg.AdminShutdownError() | pg.CrashShutdownError():
            return "the server ended the connection"
        case pg.InsufficientResourcesError():
            return "the server is out of resources or connections"
        case (
            pg.PostgresConnectionError()
            | pg.InterfaceError()
            | pg.InternalClientError()  # a connection left mid-protocol by a loss
            | ConnectionError()
        ):
            return "connection lost"
        case OSError():
            return "connection failed"
    return None


def unavailable(what: str, error: BaseException) -> StoreUnavailable | None:
    """The StoreUnavailable that ``error`` (raised by ``what``) stands for, logged;
    None if the database answered (the error is about the statement)."""
    cause = _cause(error)
    if cause is None:
        return None
    now = time.monotonic()
    if now - _last_logged.get(cause, -math.inf) >= _LOG_EVERY_S:
        _last_logged[cause] = now
        log.warning(
            "%s: the database is unavailable (%s): %s: %s",
            what,
            cause,
            type(error).__name__,
            error,
        )
    return StoreUnavailable(cause=cause)


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Re-raise driver errors from ``what`` as StoreUnavailable / StoreError.

    Errors that callers handle by meaning (a unique violation that signals a
    version conflict) are translated by those callers before this runs.
    """
    try:
        yield
    except (OSError, pg.InterfaceError, pg.InternalClientError) as e:
        raise (unavailable(what, e) or StoreUnavailable(cause="unknown")) from e
    except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as e:
        # The driver's text names the value; it goes to the log, not the caller.
        log.warning("%s: the database refused a value: %s", what, e)
        raise UnstorableValue(
            f"{what}: the database refused a value ({type(e).__name__})"
        ) from e
    except asyncpg.PostgresError as e:
        down = unavailable(what, e)
        if down is not None:
            raise down from e
        log.warning("%s failed: %s: %s", what, type(e).__name__, e)
        raise StoreError(
            f"{what} failed: the database refused it (SQLSTATE {e.sqlstate})"
        ) from e
