"""What an app's actor reads and writes of its own app (see :mod:`.api`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from picloud.domain.records import AppRecord, DeadLetterRecord
from picloud.events import Event, EventMeta, RecordedEvent
from picloud.store import (
    _apps,
    _docs,
    _executions,
    _fetch_journal,
    _kv,
    _kv_append,
    _secrets,
    _snapshots,
    _triggers,
)
from picloud.store._docs import DocRow
from picloud.store.docs_query import DocQuery
from picloud.store.eventlog import EventLog

__all__ = ["AppStore"]

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

    async def kv_values_expiring(
        self, keys: Sequence[KvKey]
    ) -> dict[KvKey, tuple[bytes, datetime | None]]:
        """The live values of ``keys`` with their expiry (None: no TTL)."""
        return await _kv.kv_get_expiring(self._pool, self.app_id, keys)

    async def next_kv_expiry(self, after: datetime | None = None) -> datetime | None:
        return await _kv.next_expiry(self._pool, self.app_id, after)

    async def expired_kv(
        self, now: datetime, limit: int
    ) -> list[tuple[str, str, bytes, datetime]]:
        return await _kv.expired(self._pool, self.app_id, now, limit)

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

    async def count_runs(
        self, script_id: str, *, first: int, last: int, limit: int
    ) -> int:
        """Recorded runs of ``script_id`` between two positions (at most ``limit``)."""
        return await _executions.count_runs(
            self._pool, self.app_id, script_id, first=first, last=last, limit=limit
        )

    async def sealed_secrets(self) -> dict[str, tuple[str, str]]:
        """The app's secrets, sealed: name → (ciphertext, key id)."""
        return await _secrets.sealed_secrets(self._pool, self.app_id)

    async def fetch_journal(self, run_key: str) -> dict[int, tuple[str, bytes]]:
        """What http.fetch answered in the run ``run_key`` (a delivery's attempt)."""
        return await _fetch_journal.read_journal(self._pool, self.app_id, run_key)

    async def record_fetch(
        self, run_key: str, seq: int, digest: str, entry: bytes
    ) -> None:
        await _fetch_journal.record_fetch(
            self._pool, self.app_id, run_key, seq=seq, digest=digest, entry=entry
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
