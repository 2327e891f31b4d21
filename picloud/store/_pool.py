"""The asyncpg pool: connection settings and type codecs shared by every user."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from picloud.config import Settings
from picloud.errors import StoreUnavailable
from picloud.store._errors import translate_errors

__all__ = ["Pool", "connect", "create_pool", "jsonb"]

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
    min_size: int | None = None,
    max_size: int | None = None,
) -> asyncpg.Pool:
    """A pool whose connections decode jsonb to bytes and time out long statements."""
    with translate_errors("connect"):
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size or settings.db_pool_min,
            max_size=max_size or settings.db_pool_max,
            init=_init_connection,
            reset=_no_session_state,
            server_settings=_server_settings(settings),
            command_timeout=settings.db_statement_timeout_ms / 1000 + 5,
        )
    if pool is None:  # only with a custom connection class, never here
        raise StoreUnavailable("connect: no pool")
    return pool


async def connect(dsn: str, settings: Settings) -> asyncpg.Connection:
    """One connection with the pool's codecs (for LISTEN and advisory locks)."""
    with translate_errors("connect"):
        conn = await asyncpg.connect(dsn, server_settings=_server_settings(settings))
    await _init_connection(conn)
    return conn
