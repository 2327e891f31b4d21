"""The store as its consumers see it: one object per consumer, no pool, no SQL.

- :class:`Database` owns the pool and the event log and hands out the rest;
- :class:`AppStore` is what an app's actor reads and writes of its own app;
- :class:`AdminStore` is what the admin API, auth and the dashboard read;
- :class:`SchedulerStore` is what the scheduler of wake-ups and retention reads.

Each method is one read (or one small write outside the event log: sessions,
throttling, snapshots, wake-up times); event appends go through
:class:`~picloud.store.eventlog.EventLog`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from picloud.config import Settings
from picloud.domain.access import Principal, Role
from picloud.domain.records import (
    AppRecord,
    DeadLetterRecord,
    ExecutionRecord,
    KeyRecord,
    MemberRecord,
    RouteRecord,
    ScriptRecord,
    TriggerRecord,
    UserRecord,
)
from picloud.events import Event, EventMeta, RecordedEvent
from picloud.store import (
    _apps,
    _docs,
    _executions,
    _identity,
    _kv,
    _kv_append,
    _scripts,
    _sessions,
    _snapshots,
    _throttle,
    _triggers,
)
from picloud.store._docs import DocRow
from picloud.store._errors import translate_errors
from picloud.store._identity import LoginUser
from picloud.store._pool import create_pool, recycle
from picloud.store._routing import RoutingSnapshot, routing_snapshot
from picloud.store.commit_signals import CommitSignals
from picloud.store.docs_query import DocQuery
from picloud.store.eventlog import EventLog
from picloud.store.hosts import HostRegistry

__all__ = ["AdminStore", "AppStore", "Database", "SchedulerStore"]

KvKey = tuple[str, str]


class AppStore:
    """One app's data, dead letters, snapshot and wake-up time (its actor's view)."""

    def __init__(self, log: EventLog, app_id: str) -> None:
        self._pool = log.pool
        self.log = log
        self.app_id = app_id

    async def app(self) -> AppRecord | None:
        return await _apps.get_app(self._pool, self.app_id)

    async def kv_values(self, keys: Sequence[KvKey]) -> dict[KvKey, bytes]:
        return await _kv.kv_get_many(self._pool, self.app_id, keys)

    async def kv_page(
        self, collection: str, *, prefix: str, after: str, limit: int
    ) -> list[tuple[str, bytes]]:
        return await _kv.kv_list(
            self._pool, self.app_id, collection, prefix=prefix, after=after, limit=limit
        )

    async def doc(self, collection: str, doc_id: str) -> DocRow | None:
        return await _docs.docs_get(self._pool, self.app_id, collection, doc_id)

    async def find_docs(
        self, collection: str, query: DocQuery, *, extra: int = 0
    ) -> list[DocRow]:
        return await _docs.docs_find(
            self._pool, self.app_id, collection, query, extra=extra
        )

    async def docs_page(
        self, collection: str, *, after: str, limit: int
    ) -> list[DocRow]:
        return await _docs.docs_list(
            self._pool, self.app_id, collection, after=after, limit=limit
        )

    async def dead_letter(self, dead_letter_id: str) -> DeadLetterRecord | None:
        return await _triggers.get_dead_letter(self._pool, self.app_id, dead_letter_id)

    async def dead_letters(
        self, *, resolved: bool | None, before: int | None, limit: int
    ) -> tuple[list[DeadLetterRecord], int | None]:
        return await _triggers.list_dead_letters(
            self._pool, self.app_id, resolved=resolved, before=before, limit=limit
        )

    async def still_present(
        self, *, dead_letters: list[str], abandoned: list[str]
    ) -> tuple[list[str], list[str]]:
        """Which of these dead letters and abandoned executions still exist."""
        return await _triggers.present(
            self._pool, self.app_id, dead_letters=dead_letters, abandoned=abandoned
        )

    async def snapshot(self, stream: str) -> bytes | None:
        return await _snapshots.load_snapshot(self._pool, stream)

    async def save_snapshot(self, stream: str, version: int, state: bytes) -> None:
        await _snapshots.save_snapshot(self._pool, stream, version, state)

    async def set_wakeup(self, due: datetime | None) -> None:
        await _triggers.set_wakeup(self._pool, self.app_id, due)

    async def append_kv_sets(
        self,
        stream: str,
        expected_version: int,
        events: Sequence[Event],
        metas: Sequence[EventMeta],
        *,
        stored_prev: Sequence[bool],
    ) -> list[RecordedEvent]:
        """Runs and KV sets no trigger takes, with their projection, in one
        statement (see :mod:`picloud.store._kv_append`)."""
        return await _kv_append.append_kv_sets(
            self.log,
            stream,
            expected_version,
            events,
            metas,
            app_id=self.app_id,
            stored_prev=stored_prev,
        )


class AdminStore:
    """The projections as the admin API, auth and the dashboard read them."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._key_usage = _sessions.KeyUsage()

    # -- apps and identity --------------------------------------------------------

    async def app(self, id_or_slug: str) -> AppRecord | None:
        return await _apps.get_app(self._pool, id_or_slug)

    async def apps_with_roles(
        self, user_id: str
    ) -> list[tuple[AppRecord, Role | None]]:
        return await _identity.apps_with_roles(self._pool, user_id)

    async def role_in(self, app_id: str, user_id: str) -> Role | None:
        return await _identity.role_in(self._pool, app_id, user_id)

    async def principal_for_key(self, secret_hash: str) -> Principal | None:
        return await _identity.principal_for_key(self._pool, secret_hash)

    async def principal_for_session(self, token_hash: str) -> Principal | None:
        return await _identity.principal_for_session(self._pool, token_hash)

    async def key_used(self, key_id: str) -> None:
        """Note the key's use (written at most once a minute per key)."""
        await self._key_usage.used(self._pool, key_id)

    async def login_user(self, username: str) -> LoginUser | None:
        return await _identity.login_user(self._pool, username)

    async def user(self, id_or_name: str) -> UserRecord | None:
        return await _identity.get_user(self._pool, id_or_name)

    async def users(self) -> list[UserRecord]:
        return await _identity.list_users(self._pool)

    async def admin_exists(self) -> bool:
        return await _identity.admin_exists(self._pool)

    async def members(self, app_id: str) -> list[MemberRecord]:
        return await _identity.list_members(self._pool, app_id)

    async def keys(self, user_id: str) -> list[KeyRecord]:
        return await _identity.list_keys(self._pool, user_id)

    async def key(self, key_id: str) -> KeyRecord | None:
        return await _identity.get_key(self._pool, key_id)

    async def create_session(
        self, *, token_hash: str, user_id: str, ttl_s: int
    ) -> datetime:
        return await _sessions.create_session(
            self._pool, token_hash=token_hash, user_id=user_id, ttl_s=ttl_s
        )

    async def delete_session(self, token_hash: str) -> None:
        await _sessions.delete_session(self._pool, token_hash)

    async def take_login_attempt(
        self, subjects: list[tuple[str, int]], *, window_s: float
    ) -> float:
        """Seconds to wait before the next attempt (0: go ahead); see throttle."""
        return await _throttle.take_attempt(self._pool, subjects, window_s=window_s)

    async def forgive_login(self, *, user: str, addr: str) -> None:
        await _throttle.forgive(self._pool, user=user, addr=addr)

    # -- scripts, routes, triggers, dead letters, executions ------------------------

    async def script(self, script_id: str) -> ScriptRecord | None:
        return await _scripts.get_script(self._pool, script_id)

    async def scripts(self, app_id: str) -> list[ScriptRecord]:
        return await _scripts.list_scripts(self._pool, app_id)

    async def route(self, route_id: str) -> RouteRecord | None:
        return await _scripts.get_route(self._pool, route_id)

    async def routes(self, app_id: str) -> list[RouteRecord]:
        return await _scripts.list_routes(self._pool, app_id)

    async def trigger(self, trigger_id: str) -> TriggerRecord | None:
        return await _triggers.get_trigger(self._pool, trigger_id)

    async def triggers(self, app_id: str) -> list[TriggerRecord]:
        return await _triggers.list_triggers(self._pool, app_id)

    async def dead_letter(
        self, app_id: str, dead_letter_id: str
    ) -> DeadLetterRecord | None:
        return await _triggers.get_dead_letter(self._pool, app_id, dead_letter_id)

    async def dead_letters(
        self, app_id: str, *, resolved: bool | None, before: int | None, limit: int
    ) -> tuple[list[DeadLetterRecord], int | None]:
        return await _triggers.list_dead_letters(
            self._pool, app_id, resolved=resolved, before=before, limit=limit
        )

    async def open_dead_letter_counts(self) -> dict[str, int]:
        return await _triggers.open_dead_letter_counts(self._pool)

    async def executions(
        self, app_id: str, *, status: str | None, before: int | None, limit: int
    ) -> tuple[list[ExecutionRecord], int | None]:
        return await _executions.list_executions(
            self._pool, app_id, status=status, before=before, limit=limit
        )

    # -- data -----------------------------------------------------------------------

    async def kv_collections(self, app_id: str) -> list[tuple[str, int]]:
        return await _kv.kv_collections(self._pool, app_id)

    async def kv_page(
        self, app_id: str, collection: str, *, prefix: str, after: str, limit: int
    ) -> list[tuple[str, bytes]]:
        return await _kv.kv_list(
            self._pool, app_id, collection, prefix=prefix, after=after, limit=limit
        )

    async def kv_value(self, app_id: str, collection: str, key: str) -> bytes | None:
        k = (collection, key)
        return (await _kv.kv_get_many(self._pool, app_id, [k])).get(k)

    async def doc_collections(self, app_id: str) -> list[tuple[str, int]]:
        return await _docs.doc_collections(self._pool, app_id)

    async def docs_page(
        self, app_id: str, collection: str, *, after: str, limit: int
    ) -> list[DocRow]:
        return await _docs.docs_list(
            self._pool, app_id, collection, after=after, limit=limit
        )

    async def find_docs(
        self, app_id: str, collection: str, query: DocQuery
    ) -> list[DocRow]:
        return await _docs.docs_find(self._pool, app_id, collection, query)

    async def doc(self, app_id: str, collection: str, doc_id: str) -> DocRow | None:
        return await _docs.docs_get(self._pool, app_id, collection, doc_id)


class SchedulerStore:
    """What the clock-driven work reads: due wake-ups and expired records."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def due_wakeups(self, limit: int = 1000) -> list[str]:
        """Apps with deliveries due now."""
        return await _triggers.due_wakeups(self._pool, limit)

    async def expired_dead_letters(self, older_than: datetime) -> dict[str, list[str]]:
        return await _triggers.expired_dead_letters(self._pool, older_than)

    async def expired_abandoned(self, older_than: datetime) -> dict[str, list[str]]:
        return await _triggers.expired_abandoned(self._pool, older_than)


class Database:
    """One database: its pool, its event log and the consumers' stores.

    Made by :meth:`open`, which also starts replacing the pool's connections
    every ``db_connection_max_age_s`` (see :func:`~picloud.store._pool.recycle`);
    :meth:`close` stops that and closes the pool.
    """

    def __init__(self, pool: asyncpg.Pool, log: EventLog) -> None:
        self._pool = pool
        self.log = log
        self.admin = AdminStore(pool)
        self.scheduler = SchedulerStore(pool)
        self.hosts = HostRegistry(pool)
        self._recycler: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        dsn: str,
        settings: Settings,
        *,
        signals: CommitSignals | None = None,
        init_size: int | None = None,
        max_size: int | None = None,
    ) -> Database:
        """Open the pool with ``init_size`` connections (``db_pool_min``; 0
        connects on first use, so the database need not be up yet)."""
        pool = await create_pool(dsn, settings, init_size=init_size, max_size=max_size)
        db = cls(pool, EventLog(pool, signals))
        db._recycler = asyncio.create_task(
            recycle(pool, settings.db_connection_max_age_s), name="pool-recycler"
        )
        return db

    def app(self, app_id: str) -> AppStore:
        return AppStore(self.log, app_id)

    async def routing_snapshot(self) -> RoutingSnapshot:
        """Apps, routes and quarantined apps in one snapshot, with its horizon."""
        return await routing_snapshot(self._pool)

    async def server_version(self) -> str:
        with translate_errors("server version"):
            version: str = await self._pool.fetchval("SHOW server_version")
        return version

    async def close(self) -> None:
        if self._recycler is not None:
            self._recycler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recycler
        await self._pool.close()
