"""The statements that append a batch of one app's stream, fastest first."""

from __future__ import annotations

from typing import Literal, TypeGuard, cast

from pyrsistent.typing import PMap

from picloud.actors._app_data import AppData, KvIntent, with_batch_prev
from picloud.actors._due import DueDeliveries
from picloud.events import Event, EventMeta, RecordedEvent
from picloud.events.app import InvocationRecorded
from picloud.events.pending import Deliveries, TriggerInfo
from picloud.store import AppStore

__all__ = ["Appender", "one_statement_path", "only_recorded"]


class Appender:
    """The statements that append a batch of one app's stream."""

    def __init__(
        self, store: AppStore, stream: str, *, data: AppData, due: DueDeliveries
    ) -> None:
        self._store = store
        self._log = store.log
        self.stream = stream
        self._data = data
        self._due = due

    async def append(
        self,
        items: list[Event | KvIntent],
        metas: list[EventMeta],
        *,
        expected: int,
        triggers: PMap[str, TriggerInfo],
        deliveries: Deliveries,
    ) -> tuple[list[RecordedEvent], Deliveries]:
        """Append ``items`` after version ``expected``: by one statement when
        they allow it (see one_statement_path), else with their projections;
        the recorded events and the pending deliveries after them."""
        path = one_statement_path(items, triggers)
        if path == "runs":
            # Route runs that wrote nothing: no projection, no delivery moves,
            # so one statement that commits by itself (the hot path).
            runs = cast("list[Event]", items)
            recorded = await self._log.append(self.stream, expected, runs, metas)
            return recorded, deliveries
        if path == "kv_sets":
            # Runs and the sets they made, which no trigger takes: one
            # statement with their projection (the hot write path).
            events, stored_prev = with_batch_prev(items)
            recorded = await self._store.append_kv_sets(
                self.stream, expected, events, metas, stored_prev=stored_prev
            )
            return recorded, deliveries
        return await self.with_projections(
            items, metas, expected=expected, triggers=triggers, deliveries=deliveries
        )

    async def with_projections(
        self,
        items: list[Event | KvIntent],
        metas: list[EventMeta],
        *,
        expected: int,
        triggers: PMap[str, TriggerInfo],
        deliveries: Deliveries,
    ) -> tuple[list[RecordedEvent], Deliveries]:
        """The general append: events, projections and the deliveries' fold
        and wake-up time in one transaction."""
        async with self._log.transaction() as tx:
            events = await self._data.resolve(tx, items)
            recorded = await tx.append(self.stream, expected, events, metas)
            await tx.project_app(recorded)
            deliveries = await self._due.track(tx, deliveries, triggers, recorded)
        return recorded, deliveries


def only_recorded(item: Event | KvIntent) -> TypeGuard[InvocationRecorded]:
    """A record of a run that no delivery waits for (a route's run)."""
    return type(item) is InvocationRecorded and item.delivery_id is None


def one_statement_path(
    items: list[Event | KvIntent], triggers: PMap[str, TriggerInfo]
) -> Literal["runs", "kv_sets"] | None:
    """Which one-statement append takes ``items``: ``runs`` (route runs that
    wrote nothing), ``kv_sets`` (route runs and KV sets no trigger takes:
    no delivery moves, no projection but the entries), or None (the
    general append with projections)."""
    path: Literal["runs", "kv_sets"] = "runs"
    for item in items:
        if isinstance(item, KvIntent):
            collection = item.event.collection
            if item.event.expires_at is not None:
                return None  # a TTL moves the app's wake-up time
            if any(t.takes("kv", "set", collection) for t in triggers.values()):
                return None
            path = "kv_sets"
        elif not only_recorded(item):
            return None
    return path
