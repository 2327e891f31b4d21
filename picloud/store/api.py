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
from datetime import datetime

import asyncpg

from picloud.config import Settings
from picloud.domain.access import Principal, Role
from picloud.domain.records import (
    AppRecord,
    DeadLetterRecord,
    ExecutionDetail,
    ExecutionRecord,
    KeyRecord,
    MemberRecord,
    RouteRecord,
    ScriptRecord,
    ScriptVersion,
    SecretRecord,
    TriggerRecord,
    UserRecord,
)
from picloud.domain.redaction import CREDENTIAL_HEADERS, credential_names
from picloud.events import RecordedEvent
from picloud.events.app import CorsPolicy
from picloud.store import (
    _apps,
    _docs,
    _executions,
    _identity,
    _kv,
    _scripts,
    _secrets,
    _sessions,
    _throttle,
    _triggers,
)
from picloud.store._app_store import AppStore
from picloud.store._docs import DocRow
from picloud.store._errors import translate_errors
from picloud.store._executions import ExecutionFilter
from picloud.store._identity import LoginUser
from picloud.store._pool import create_pool, recycle
from picloud.store._routing import RoutingSnapshot, routing_snapshot
from picloud.store.commit_signals import CommitSignals
from picloud.store.docs_query import DocQuery
from picloud.store.event_pages import EventReader
from picloud.store.eventlog import EventLog
from picloud.store.execution_tail import ExecutionTail
from picloud.store.hosts import HostRegistry

__all__ = ["AdminStore", "AppStore", "Database", "SchedulerStore"]

KvKey = tuple[str, str]


class AdminStore:
    """The projections as the admin API, auth and the dashboard read them."""

    def __init__(self, pool: asyncpg.Pool, log: EventLog) -> None:
        self._pool = pool
        self._log = log
        self._key_usage = _sessions.KeyUsage()

    # -- apps and identity --------------------------------------------------------

    async def app(self, id_or_slug: str) -> AppRecord | None:
        return await _apps.get_app(self._pool, id_or_slug)

    async def app_settings(
        self, app_id: str
    ) -> tuple[CorsPolicy | None, list[str] | None]:
        return await _apps.app_settings(self._pool, app_id)

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

    async def app_keys(self, app_id: str) -> list[KeyRecord]:
        """Every user's keys bound to the app (never their secrets)."""
        return await _identity.list_app_keys(self._pool, app_id)

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

    async def script_versions(self, app_id: str, script_id: str) -> list[ScriptVersion]:
        return await _scripts.script_versions(self._pool, app_id, script_id)

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

    async def dead_letters(  # noqa: PLR0913  # filters are optional keywords
        self,
        app_id: str,
        *,
        resolved: bool | None,
        before: int | None,
        limit: int,
        open_only: bool = False,
        script_id: str | None = None,
    ) -> tuple[list[DeadLetterRecord], int | None]:
        """Newest first; ``open_only``: neither resolved nor replayed."""
        return await _triggers.list_dead_letters(
            self._pool,
            app_id,
            resolved=resolved,
            before=before,
            limit=limit,
            open_only=open_only,
            script_id=script_id,
        )

    async def secrets(self, app_id: str) -> list[SecretRecord]:
        """The app's secrets by name and time (never a value)."""
        return await _secrets.list_secrets(self._pool, app_id)

    async def open_dead_letter_counts(self) -> dict[str, int]:
        """Per app, the dead letters neither resolved nor replayed."""
        return await _triggers.open_dead_letter_counts(self._pool)

    async def dead_letter_attempts(
        self, app_id: str, dead_letter_id: str
    ) -> list[ExecutionRecord]:
        """The failed runs that ended in this dead letter, oldest first."""
        return await _executions.letter_attempts(self._pool, app_id, dead_letter_id)

    async def executions(
        self,
        app_id: str,
        *,
        where: ExecutionFilter | None = None,
        before: int | None,
        limit: int,
    ) -> tuple[list[ExecutionRecord], int | None]:
        """Newest first, filtered by ``where`` (every run when None)."""
        return await _executions.list_executions(
            self._pool,
            app_id,
            where=where or ExecutionFilter(),
            before=before,
            limit=limit,
        )

    async def execution(self, app_id: str, execution_id: str) -> ExecutionDetail | None:
        return await _executions.get_execution(self._pool, app_id, execution_id)

    # -- the app's own stream -------------------------------------------------------

    async def app_events(
        self, app_id: str, *, after: int, limit: int
    ) -> list[RecordedEvent]:
        """Events of the app's stream after version ``after``, oldest first.

        The app stream holds no credentials: users, keys and their hashes are
        events of the ``system`` stream.
        """
        return await self._log.read_stream(f"app-{app_id}", after, limit)

    async def app_stream_version(self, app_id: str) -> int:
        """The version of the app stream's newest event (0: none yet)."""
        return await self._log.stream_version(f"app-{app_id}")

    # -- data -----------------------------------------------------------------------

    async def kv_collections(self, app_id: str) -> list[tuple[str, int]]:
        return await _kv.kv_collections(self._pool, app_id)

    async def kv_page(
        self, app_id: str, collection: str, *, prefix: str, after: str, limit: int
    ) -> list[tuple[str, bytes, datetime | None]]:
        """Live entries with their expiry (None: no TTL)."""
        return await _kv.kv_list_expiring(
            self._pool, app_id, collection, prefix=prefix, after=after, limit=limit
        )

    async def kv_value(
        self, app_id: str, collection: str, key: str
    ) -> tuple[bytes, datetime | None] | None:
        """A live value and its expiry."""
        k = (collection, key)
        return (await _kv.kv_get_expiring(self._pool, app_id, [k])).get(k)

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

    def __init__(
        self,
        pool: asyncpg.Pool,
        log: EventLog,
        *,
        redact_headers: frozenset[str] = CREDENTIAL_HEADERS,
    ) -> None:
        self._pool = pool
        self.log = log
        self.events = EventReader(pool, log.signals, redact_headers)
        """The global order as it leaves PiCloud (redacted pages)."""
        self.execution_tail = ExecutionTail(pool, self.events)
        """Apps' execution logs followed live, with their notices."""
        self.admin = AdminStore(pool, log)
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
        db = cls(
            pool,
            EventLog(pool, signals),
            redact_headers=credential_names(settings.redact_headers),
        )
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
