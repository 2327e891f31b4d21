"""When an app's actor runs its pending deliveries (SPEC.md §4).

The pending deliveries are a fold of the log (``events.pending``); this module
decides when each attempt is queued: at once when it is due, else on a timer
set for the earliest one, and keeps the app's stored wake-up time, so the
scheduler wakes a passivated app when a delivery falls due. The app's timed
work (schedules, TTLs: ``_timed``) shares the timer and the wake-up time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

from pyrsistent.typing import PMap

from picloud.actors._timed import TimedWork, sooner
from picloud.domain.commands import Deliver
from picloud.events import RecordedEvent, utcnow
from picloud.events.pending import (
    Deliveries,
    Delivery,
    TriggerInfo,
    evolve_deliveries,
)
from picloud.store import AppStore, Transaction

__all__ = ["DueDeliveries", "earliest"]

_NO_DEADLINE = 365 * 86_400.0

Submit = Callable[[Deliver, float], object]


class DueDeliveries:
    """The attempts queued, the timer for the next one due, the wake-up time."""

    def __init__(
        self,
        store: AppStore,
        *,
        submit: Submit,
        rescan: Callable[[], None],
        timed: TimedWork,
    ) -> None:
        """``submit`` queues a command on the actor; ``rescan`` is the actor's
        full :meth:`schedule`, run by the timer when the next delivery is due."""
        self._store = store
        self._submit = submit
        self._rescan = rescan
        self._timed = timed
        self._queued: dict[str, int] = {}
        """Delivery id → the attempt queued. It stays until the fold moves the
        delivery on (done, or the next attempt), so a commit of other events in
        between cannot queue the same attempt twice."""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: datetime | None = None
        self.wakeup: datetime | None = None
        """The wake-up time stored for the app (None: never)."""
        self.changed: set[str] = set()
        """Deliveries the batch being appended touched."""

    def reset(self, deliveries: Deliveries) -> None:
        """After (re)activation: nothing queued, the wake-up time as stored."""
        self.wakeup = sooner(earliest(deliveries), self._timed.next_time())
        self._queued.clear()
        self.changed.clear()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def schedule(self, deliveries: Deliveries, only: set[str] | None = None) -> None:
        """Queue the due deliveries not yet queued, in log order, and arm the
        timer for the next one: all of them, or ``only`` the ids a batch touched
        (so a long backlog is not rescanned on every commit)."""
        if only is None:
            for gone in self._queued.keys() - deliveries.keys():
                del self._queued[gone]
            candidates = list(deliveries.values())
        else:
            candidates = []
            for delivery_id in only:
                delivery = deliveries.get(delivery_id)
                if delivery is None:
                    self._queued.pop(delivery_id, None)
                else:
                    candidates.append(delivery)
        now = utcnow()
        soonest: datetime | None = None
        for delivery in sorted(candidates, key=_log_order):
            if self._queued.get(delivery.id) == delivery.attempt:
                continue
            if delivery.due_at is None or delivery.due_at <= now:
                self._queued[delivery.id] = delivery.attempt
                self._submit(Deliver(delivery_id=delivery.id), _NO_DEADLINE)
            elif soonest is None or delivery.due_at < soonest:
                soonest = delivery.due_at
        soonest = sooner(soonest, self._timed.queue_due(now))
        self._arm(soonest, now, replace=only is None)

    async def refresh_wakeup(self, deliveries: Deliveries) -> None:
        """Set the stored wake-up time to the exact earliest due delivery. The
        appends only ever lower it, so a finished delivery leaves it early, and
        the scheduler would wake the app for nothing until this runs."""
        exact = sooner(earliest(deliveries), self._timed.next_time())
        if exact != self.wakeup:
            await self._store.set_wakeup(exact)
            self.wakeup = exact

    async def track(
        self,
        tx: Transaction,
        deliveries: Deliveries,
        triggers: PMap[str, TriggerInfo],
        recorded: Sequence[RecordedEvent],
    ) -> Deliveries:
        """The pending deliveries after the batch, and the app's wake-up time,
        written in the batch's own transaction."""
        changed = self.changed
        for r in recorded:
            deliveries = evolve_deliveries(deliveries, triggers, r, changed)
        # Never later than the earliest due delivery (a crash must not delay
        # work); lowering it needs only the touched ones, no scan of a backlog.
        # No delivery left: the next timed work, if any (never None while a
        # schedule waits, or the scheduler would not wake a passivated app).
        timed = self._timed
        timed.note(recorded)
        wakeup = timed.next_time() if not deliveries else self.wakeup
        if timed.moved:
            wakeup = sooner(wakeup, timed.next_time())
        for delivery_id in changed:
            delivery = deliveries.get(delivery_id)
            if delivery is not None:
                due = delivery.due_at or delivery.first_attempt_at
                wakeup = due if wakeup is None else min(wakeup, due)
        if wakeup != self.wakeup:
            await tx.set_wakeup(self._store.app_id, wakeup)
            self.wakeup = wakeup
        return deliveries

    def _arm(self, due: datetime | None, now: datetime, *, replace: bool) -> None:
        """Run a full scan at ``due``: instead of the timer set (``replace``), or
        only if earlier than it."""
        if not replace and (due is None or (self._timer_at and self._timer_at <= due)):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, due
        if due is not None:
            delay = max(0.0, (due - now).total_seconds())
            self._timer = asyncio.get_running_loop().call_later(delay, self._rescan)


def _log_order(delivery: Delivery) -> int:
    return delivery.seq


def earliest(deliveries: Deliveries) -> datetime | None:
    """When the app must next be awake for its deliveries (None: never)."""
    times = [d.due_at or d.first_attempt_at for d in deliveries.values()]
    return min(times) if times else None
