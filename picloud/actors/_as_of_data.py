"""An app's data as of a past moment, for a dry run's SDK (what-if).

A :class:`~picloud.actors._app_data.DataSource` over the pure fold of the
app's stream (events.data_state) at that moment, answering as the
projections would have then: KV lists in key order (codepoints), document
lists in id order, finds through the query DSL's reference semantics
(store.docs_query: the same rules its SQL is tested equal to). Nothing here
is ever written: a dry run's writes stay in its own ``staged`` overlay.

Dead letters and secrets are not part of it (they are the live app's, not
its data): their SDK calls fail in a dry run with a message that says so.
"""

from __future__ import annotations

import msgspec

from picloud.domain.records import DeadLetterRecord
from picloud.errors import SdkCallError
from picloud.events.data_state import DataState
from picloud.store import DocRow
from picloud.store.docs_query import DocQuery, matches, sort_key

__all__ = ["AsOfData"]

_NO_DEAD_LETTERS = (
    "dead letters are not available in a what-if run (it sees only the app's"
    " KV entries and documents as of the invocation)"
)


class AsOfData:
    """``state`` (the fold at some moment) as the SDK reads data."""

    def __init__(self, app_id: str, state: DataState) -> None:
        self._app_id = app_id
        self._state = state

    @property
    def app_id(self) -> str:
        return self._app_id

    async def kv_read(self, collection: str, key: str) -> bytes | None:
        return self._state.kv.get((collection, key))

    async def doc_read(self, collection: str, doc_id: str) -> DocRow | None:
        doc = self._state.docs.get((collection, doc_id))
        return (
            None
            if doc is None
            else DocRow(doc_id, doc.data, doc.created_at, doc.updated_at)
        )

    def kv_pending_in(self, collection: str) -> dict[str, bytes | None]:
        return {}  # nothing waits for an append in a dry run

    def docs_pending_in(self, collection: str) -> dict[str, DocRow | None]:
        return {}

    async def kv_page(
        self, collection: str, *, prefix: str, after: str, limit: int
    ) -> list[tuple[str, bytes]]:
        kv = self._state.kv
        keys = sorted(
            k for (c, k) in kv if c == collection and k > after and k.startswith(prefix)
        )
        return [(k, kv[collection, k]) for k in keys[:limit]]

    async def find_docs(
        self, collection: str, query: DocQuery, *, extra: int
    ) -> list[DocRow]:
        decode = msgspec.json.decode
        decoded = [(row, decode(row.data)) for row in self._rows(collection)]
        found = [(row, data) for row, data in decoded if matches(query, data)]
        key = sort_key(query)
        found.sort(key=lambda pair: key(pair[0].id, pair[1]))
        return [row for row, _ in found[: query.limit + extra]]

    async def docs_page(
        self, collection: str, *, after: str, limit: int
    ) -> list[DocRow]:
        rows = sorted(
            (row for row in self._rows(collection) if row.id > after),
            key=lambda row: row.id,
        )
        return rows[:limit]

    async def dead_letter(self, dead_letter_id: str) -> DeadLetterRecord | None:
        raise SdkCallError(_NO_DEAD_LETTERS)

    async def dead_letters(
        self, *, resolved: bool | None, before: int | None, limit: int
    ) -> tuple[list[DeadLetterRecord], int | None]:
        raise SdkCallError(_NO_DEAD_LETTERS)

    async def sealed_secrets(self) -> dict[str, tuple[str, str]]:
        raise SdkCallError(
            "secrets are not opened in a what-if run (a dry run of the past"
            " reaches nothing outside the app's data)"
        )

    def _rows(self, collection: str) -> list[DocRow]:
        return [
            DocRow(doc_id, doc.data, doc.created_at, doc.updated_at)
            for (c, doc_id), doc in self._state.docs.items()
            if c == collection
        ]
