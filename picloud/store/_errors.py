"""The one place where asyncpg's exceptions become PiCloud's."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from picloud.errors import StoreError, StoreUnavailable, UnstorableValue

__all__ = ["translate_errors"]

log = logging.getLogger(__name__)

_UNAVAILABLE = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
)


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Re-raise driver errors from ``what`` as StoreUnavailable / StoreError.

    Errors that callers handle by meaning (a unique violation that signals a
    version conflict) are translated by those callers before this runs.
    """
    try:
        yield
    except _UNAVAILABLE as e:
        raise StoreUnavailable(
            f"{what}: database unavailable ({type(e).__name__})"
        ) from e
    except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as e:
        # The driver's text names the value; it goes to the log, not the caller.
        log.warning("%s: the database refused a value: %s", what, e)
        raise UnstorableValue(
            f"{what}: the database refused a value ({type(e).__name__})"
        ) from e
    except asyncpg.PostgresError as e:
        raise StoreError(f"{what}: {e.__class__.__name__}: {e}") from e
