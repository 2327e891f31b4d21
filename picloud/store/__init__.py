"""Postgres: the event log, projections, migrations and the embedded server.

The only package that talks to asyncpg; driver errors are translated here.
"""

from __future__ import annotations

from picloud.store.embedded import EmbeddedPostgres
from picloud.store.eventlog import START, Cursor, EventLog, Transaction
from picloud.store.migrations import apply_migrations
from picloud.store.pool import connect, create_pool
from picloud.store.wakeups import Wakeups, bridge_to_postgres

__all__ = [
    "START",
    "Cursor",
    "EmbeddedPostgres",
    "EventLog",
    "Transaction",
    "Wakeups",
    "apply_migrations",
    "bridge_to_postgres",
    "connect",
    "create_pool",
]
