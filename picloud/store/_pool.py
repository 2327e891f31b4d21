"""The asyncpg pool: connection settings and type codecs shared by every user."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import msgspec

from picloud.config import Settings
from picloud.errors import StoreUnavailable
from picloud.store._errors import translate_errors

__all__ = ["Pool", "connect", "create_pool", "jsonb", "recycle"]

Pool = asyncpg.Pool

_json_encode = msgspec.json.Encoder().encode
_JSONB_VERSION = b"\x01"


def jsonb(value: Any) -> bytes:
    """Encode a JSON-like value (or pass pre-encoded JSON bytes) for json or jsonb."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, msgspec.Raw):
        return bytes(value)
    return _json_encode(value)


def _encode_jsonb(value: Any) -> bytes:
    return _JSONB_VERSION + jsonb(value)


def _decode_jsonb(data: bytes) -> bytes:
    # Callers decode with the msgspec type they expect; bytes also embed as
    # msgspec.Raw in responses without a second parse.
    return data[1:]


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's default reset query (a round trip per
    transaction): pool connections carry no session state — no LISTEN, advisory
    lock, cursor or SET outlives a transaction here; asyncpg still rolls back a
    transaction left open before this runs."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=_encode_jsonb,
        decoder=_decode_jsonb,
        format="binary",
    )
    # json's binary form is its text: the event log's payloads go in and come
    # out as the msgspec bytes, untouched.
    await conn.set_type_codec(
        "json", schema="pg_catalog", encoder=jsonb, decoder=bytes, format="binary"
    )


def _server_settings(settings: Settings) -> dict[str, str]:
    # Short transactions keep the global readers' horizon moving (DESIGN.md).
    return {
        "application_name": "picloud",
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "idle_in_transaction_session_timeout": str(
            settings.db_idle_in_transaction_timeout_ms
        ),
    }


async def create_pool(
    dsn: str,
    settings: Settings,
    *,
    init_size: int | None = None,
    max_size: int | None = None,
) -> asyncpg.Pool:
    """A pool whose connections decode jsonb to bytes and time out long statements.

    It opens ``init_size`` connections (``db_pool_min``) now and keeps no
    floor: a connection idle for ``db_idle_connection_ms`` is closed, so
    Postgres can finish a smart shutdown, and the next use opens one again.
    A connection attempt gives up after ``db_connect_timeout_ms``.
    """
    size = max_size or settings.db_pool_max
    with translate_errors("connect"):
        pool = await asyncpg.create_pool(
            dsn,
            init_size=min(
                size, settings.db_pool_min if init_size is None else init_size
            ),
            min_size=0,
            max_size=size,
            max_inactive_connection_lifetime=settings.db_idle_connection_ms / 1000,
            timeout=settings.db_connect_timeout_ms / 1000,
            init=_init_connection,
            reset=_no_session_state,
            server_settings=_server_settings(settings),
            command_timeout=settings.db_statement_timeout_ms / 1000 + 5,
        )
    if pool is None:  # only with a custom connection class, never here
        raise StoreUnavailable(cause="no pool")
    return pool


async def recycle(pool: asyncpg.Pool, every_s: float) -> None:
    """Forever: replace every connection of ``pool`` after ``every_s`` (each
    closes on its next release, and the next use opens a new one). A busy pool
    never idles, and Postgres in a smart shutdown waits for every session to
    end while it refuses new ones: this is what ends the busy ones."""
    while True:
        await asyncio.sleep(every_s)
        await pool.expire_connections()


async def connect(dsn: str, settings: Settings) -> asyncpg.Connection:
    """One connection with the pool's codecs (for LISTEN and advisory locks)."""
    with translate_errors("connect"):
        conn = await asyncpg.connect(
            dsn,
            timeout=settings.db_connect_timeout_ms / 1000,
            server_settings=_server_settings(settings),
        )
        try:
            await _init_connection(conn)
        except BaseException:
            conn.terminate()
            raise
    return conn
