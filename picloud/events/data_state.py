"""An app's KV entries and documents as a fold of its stream (pure).

The projections hold the data as it is now; this fold gives it as of any
point of the log, with the projections' rules (a document keeps the time it
was created; an entry or document is gone once deleted). It is a second,
independent statement of what the data projections must hold, which
``picloud replay --as-of`` checks them against.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from picloud.events._base import Event
from picloud.events.app import (
    DocCreated,
    DocDeleted,
    DocUpdated,
    KvDeleted,
    KvExpired,
    KvSet,
)

__all__ = ["DataState", "DocState"]


@dataclass(frozen=True, slots=True)
class DocState:
    data: bytes
    """JSON text, as the event holds it."""
    created_at: datetime
    updated_at: datetime


@dataclass
class DataState:
    """KV entries by (collection, key) and documents by (collection, id)."""

    kv: dict[tuple[str, str], bytes] = field(default_factory=dict)
    docs: dict[tuple[str, str], DocState] = field(default_factory=dict)

    def apply(self, event: Event) -> None:
        """The data after ``event`` (other events change nothing here)."""
        match event:
            case KvSet():
                self.kv[event.collection, event.key] = bytes(event.value)
            case KvDeleted() | KvExpired():
                self.kv.pop((event.collection, event.key), None)
            case DocCreated():
                self.docs[event.collection, event.doc_id] = DocState(
                    bytes(event.data), event.at, event.at
                )
            case DocUpdated():
                old = self.docs.get((event.collection, event.doc_id))
                created = event.at if old is None else old.created_at
                self.docs[event.collection, event.doc_id] = DocState(
                    bytes(event.data), created, event.at
                )
            case DocDeleted():
                self.docs.pop((event.collection, event.doc_id), None)

    def apply_all(self, events: Iterable[Event]) -> None:
        """:meth:`apply` each of ``events`` in order. The common case, a KV
        set, is taken without the match: a replay folds millions of them."""
        kv = self.kv
        for event in events:
            if type(event) is KvSet:
                kv[event.collection, event.key] = bytes(event.value)
            else:
                self.apply(event)
