"""Postgres: the event log, projections, migrations and the embedded server.

The only package that talks to asyncpg or holds SQL; driver errors are
translated here. Consumers get a :class:`Database` and, from it, the store
API made for them (:mod:`picloud.store.api`).
"""

from __future__ import annotations

from picloud.store._docs import DocRow
from picloud.store._executions import ExecutionFilter
from picloud.store._identity import LoginUser
from picloud.store._routing import RouteRow, RoutingSnapshot
from picloud.store.api import AdminStore, AppStore, Database, SchedulerStore
from picloud.store.commit_signals import (
    ROUTING_ONLY,
    CommitSignals,
    relay_commit_signals,
)
from picloud.store.embedded import EmbeddedPostgres
from picloud.store.eventlog import START, Cursor, EventLog, Transaction
from picloud.store.execution_tail import ExecutionTail, TailItem
from picloud.store.hosts import HostRegistry, HostRow
from picloud.store.migrations import (
    MigrationState,
    migrate,
    migration_status,
    notify_readers,
)

__all__ = [
    "ROUTING_ONLY",
    "START",
    "AdminStore",
    "AppStore",
    "CommitSignals",
    "Cursor",
    "Database",
    "DocRow",
    "EmbeddedPostgres",
    "EventLog",
    "ExecutionFilter",
    "ExecutionTail",
    "HostRegistry",
    "HostRow",
    "LoginUser",
    "MigrationState",
    "RouteRow",
    "RoutingSnapshot",
    "SchedulerStore",
    "TailItem",
    "Transaction",
    "migrate",
    "migration_status",
    "notify_readers",
    "relay_commit_signals",
]
