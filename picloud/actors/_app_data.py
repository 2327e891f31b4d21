"""An app's data as its actor sees it: durable rows, plus writes not yet durable.

Reads go through three layers, newest first: the writes of commands whose
append is still pending (group commit: later commands must see them), a small
LRU cache of durable KV values (the actor is the only writer of its app, so
the cache cannot go stale), and the projection tables.

``kv.set`` does not read the previous value when it runs: its event is staged
as a :class:`KvIntent`, and ``prev`` is filled in at append time, from the
batch itself (:func:`with_batch_prev`) or from the stored entry: by
:meth:`AppData.resolve` inside the append's transaction, or by the append
statement itself (:mod:`picloud.store._kv_append`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import msgspec

from picloud.domain.records import DeadLetterRecord
from picloud.events import Event, utcnow
from picloud.events.app import JSON_NULL, KvDeleted, KvSet
from picloud.metrics import KV_CACHE_HITS, KV_CACHE_MISSES
from picloud.store import AppStore, DocRow, Transaction
from picloud.store.docs_query import DocQuery

__all__ = ["AppData", "DataSource", "KvIntent", "Staged", "with_batch_prev"]

KvKey = tuple[str, str]
DocKey = tuple[str, str]
_CACHEABLE_BYTES = 8 * 1024


@dataclass(frozen=True)
class KvIntent:
    """A ``kv.set`` whose event (with ``prev``) is made at append time."""

    event: KvSet


@dataclass
class Staged:
    """The data writes of one command, in call order, and their final values."""

    events: list[Event | KvIntent] = field(default_factory=list)
    kv: dict[KvKey, bytes | None] = field(default_factory=dict)
    kv_expires: dict[KvKey, datetime] = field(default_factory=dict)
    """When the entries set with a TTL run out (read as absent from then)."""
    docs: dict[DocKey, DocRow | None] = field(default_factory=dict)

    def kv_live(self, k: KvKey, now: datetime) -> bytes | None:
        """The staged value of ``k``, or None once its TTL ran out."""
        expires = self.kv_expires.get(k)
        return None if expires is not None and expires <= now else self.kv[k]


class DataSource(Protocol):
    """What the SDK reads of an app's data (sdk.DataAccess): the live, layered
    :class:`AppData`, or the data as of a past moment for a dry run."""

    @property
    def app_id(self) -> str: ...

    async def kv_read(self, collection: str, key: str) -> bytes | None: ...

    async def doc_read(self, collection: str, doc_id: str) -> DocRow | None: ...

    def kv_pending_in(self, collection: str) -> dict[str, bytes | None]: ...

    def docs_pending_in(self, collection: str) -> dict[str, DocRow | None]: ...

    async def kv_page(
        self, collection: str, *, prefix: str, after: str, limit: int
    ) -> list[tuple[str, bytes]]: ...

    async def find_docs(
        self, collection: str, query: DocQuery, *, extra: int
    ) -> list[DocRow]: ...

    async def docs_page(
        self, collection: str, *, after: str, limit: int
    ) -> list[DocRow]: ...

    async def dead_letter(self, dead_letter_id: str) -> DeadLetterRecord | None: ...

    async def dead_letters(
        self, *, resolved: bool | None, before: int | None, limit: int
    ) -> tuple[list[DeadLetterRecord], int | None]: ...

    async def sealed_secrets(self) -> dict[str, tuple[str, str]]: ...


class AppData:
    """The layered data of one app; see the module docstring."""

    def __init__(self, store: AppStore, *, cache_entries: int) -> None:
        self.app_id = store.app_id
        self.store = store
        self._cache_entries = cache_entries
        self._kv_cache: OrderedDict[KvKey, bytes | None] = OrderedDict()
        self._kv_pending: dict[KvKey, tuple[bytes | None, int]] = {}
        self._kv_pending_expires: dict[KvKey, datetime] = {}
        self._docs_pending: dict[DocKey, tuple[DocRow | None, int]] = {}
        self._staged: dict[int, Staged] = {}
        self._seq = 0

    # -- reads ----------------------------------------------------------------------

    async def kv_read(self, collection: str, key: str) -> bytes | None:
        """The value of a key now (an entry past its TTL reads as absent)."""
        k = (collection, key)
        pending = self._kv_pending.get(k)
        if pending is not None:
            expires = self._kv_pending_expires.get(k)
            return None if expires is not None and expires <= utcnow() else pending[0]
        if k in self._kv_cache:
            KV_CACHE_HITS.inc()
            self._kv_cache.move_to_end(k)
            return self._kv_cache[k]
        KV_CACHE_MISSES.inc()
        found = (await self.store.kv_values_expiring([k])).get(k)
        if found is not None and found[1] is not None:
            return found[0]  # a TTL: never cached, the store says when it is gone
        value = None if found is None else found[0]
        self._cache(k, value)
        return value

    async def doc_read(self, collection: str, doc_id: str) -> DocRow | None:
        pending = self._docs_pending.get((collection, doc_id))
        if pending is not None:
            return pending[0]
        return await self.store.doc(collection, doc_id)

    def kv_pending(self, k: KvKey) -> bool:
        """Whether a write of ``k`` waits for its append."""
        return k in self._kv_pending

    async def kv_page(
        self, collection: str, *, prefix: str, after: str, limit: int
    ) -> list[tuple[str, bytes]]:
        return await self.store.kv_page(
            collection, prefix=prefix, after=after, limit=limit
        )

    async def find_docs(
        self, collection: str, query: DocQuery, *, extra: int
    ) -> list[DocRow]:
        return await self.store.find_docs(collection, query, extra=extra)

    async def docs_page(
        self, collection: str, *, after: str, limit: int
    ) -> list[DocRow]:
        return await self.store.docs_page(collection, after=after, limit=limit)

    async def dead_letter(self, dead_letter_id: str) -> DeadLetterRecord | None:
        return await self.store.dead_letter(dead_letter_id)

    async def dead_letters(
        self, *, resolved: bool | None, before: int | None, limit: int
    ) -> tuple[list[DeadLetterRecord], int | None]:
        return await self.store.dead_letters(
            resolved=resolved, before=before, limit=limit
        )

    async def sealed_secrets(self) -> dict[str, tuple[str, str]]:
        return await self.store.sealed_secrets()

    def kv_pending_in(self, collection: str) -> dict[str, bytes | None]:
        now, expiring = utcnow(), self._kv_pending_expires
        return {
            k: None if (c, k) in expiring and expiring[c, k] <= now else v
            for (c, k), (v, _) in self._kv_pending.items()
            if c == collection
        }

    def docs_pending_in(self, collection: str) -> dict[str, DocRow | None]:
        return {
            i: d for (c, i), (d, _) in self._docs_pending.items() if c == collection
        }

    # -- the write path ---------------------------------------------------------------

    def stage(self, staged: Staged) -> int:
        """Make a command's writes visible to later commands; returns its ticket."""
        self._seq += 1
        for k, value in staged.kv.items():
            self._kv_pending[k] = (value, self._seq)
            expires = staged.kv_expires.get(k)
            if expires is None:
                self._kv_pending_expires.pop(k, None)
            else:
                self._kv_pending_expires[k] = expires
        for d, doc in staged.docs.items():
            self._docs_pending[d] = (doc, self._seq)
        self._staged[self._seq] = staged
        return self._seq

    def committed(self, tickets: Sequence[int]) -> None:
        """The commands with these tickets are durable: their values become cache."""
        for ticket in tickets:
            staged = self._staged.pop(ticket, None)
            if staged is None:
                continue
            for k, value in staged.kv.items():
                if self._kv_pending.get(k, (None, -1))[1] == ticket:
                    del self._kv_pending[k]
                    self._kv_pending_expires.pop(k, None)
                    if k in staged.kv_expires:
                        self._kv_cache.pop(k, None)  # a TTL: read from the store
                    else:
                        self._cache(k, value)
            for d in staged.docs:
                if self._docs_pending.get(d, (None, -1))[1] == ticket:
                    del self._docs_pending[d]

    def reset(self) -> None:
        """Forget everything not read from the log again (after a failed append)."""
        self._kv_cache.clear()
        self._kv_pending.clear()
        self._kv_pending_expires.clear()
        self._docs_pending.clear()
        self._staged.clear()

    async def resolve(
        self, tx: Transaction, items: Sequence[Event | KvIntent]
    ) -> list[Event]:
        """Turn intents into KvSet events with ``prev``, in order, inside ``tx``
        (so the previous values are the committed ones)."""
        events, stored = with_batch_prev(items)
        firsts = {
            i: e for i, e in enumerate(events) if stored[i] and isinstance(e, KvSet)
        }
        if not firsts:
            return events
        keys = [(e.collection, e.key) for e in firsts.values()]
        found = await tx.kv_values(self.app_id, keys)
        for i, event in firsts.items():
            prev = found.get((event.collection, event.key))
            if prev is not None:
                events[i] = msgspec.structs.replace(event, prev=msgspec.Raw(prev))
        return events

    def _cache(self, k: KvKey, value: bytes | None) -> None:
        if value is not None and len(value) > _CACHEABLE_BYTES:
            self._kv_cache.pop(k, None)
            return
        self._kv_cache[k] = value
        self._kv_cache.move_to_end(k)
        while len(self._kv_cache) > self._cache_entries:
            self._kv_cache.popitem(last=False)


def with_batch_prev(
    items: Sequence[Event | KvIntent],
) -> tuple[list[Event], list[bool]]:
    """The events of ``items`` in order, each intent's ``prev`` set from the
    batch where an earlier item wrote its key; and, per event, whether its
    ``prev`` is still the stored value (its key's first write is this intent)."""
    current: dict[KvKey, bytes | None] = {}
    events: list[Event] = []
    stored: list[bool] = []
    for item in items:
        if isinstance(item, KvIntent):
            event = item.event
            k = (event.collection, event.key)
            first = k not in current
            if not first:
                prev = current[k]
                event = msgspec.structs.replace(
                    event, prev=JSON_NULL if prev is None else msgspec.Raw(prev)
                )
            current[k] = bytes(event.value)
            events.append(event)
            stored.append(first)
            continue
        if isinstance(item, KvSet | KvDeleted):
            current[item.collection, item.key] = (
                bytes(item.value) if isinstance(item, KvSet) else None
            )
        events.append(item)
        stored.append(False)
    return events, stored
