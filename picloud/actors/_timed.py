"""An app's work that no delivery asks for: its schedules and its KV TTLs.

Both are decided from the state (a schedule's next time is a fold of the log;
a TTL's is the earliest ``expires_at`` stored), and both must wake a
passivated app: their next time joins the deliveries' in the app's stored
wake-up time (see ``_due``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from picloud.domain.commands import Command, ExpireKeys, FireSchedules
from picloud.domain.schedules import next_due
from picloud.events import RecordedEvent
from picloud.events.app import KvSet
from picloud.events.app_state import AppState
from picloud.events.triggers import ScheduleFired, TriggerAdded, TriggerRemoved

__all__ = ["TimedWork", "sooner"]

_NO_DEADLINE = 365 * 86_400.0
_SCHEDULE_EVENTS = (TriggerAdded, TriggerRemoved, ScheduleFired)


def sooner(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return min(a, b)


class TimedWork:
    """Queues a FireSchedules or an ExpireKeys when its time comes, once."""

    def __init__(
        self,
        *,
        state: Callable[[], AppState],
        submit: Callable[[Command, float], object],
    ) -> None:
        self._state = state
        self._submit = submit
        self.firing_queued = False
        """A FireSchedules waits in the inbox."""
        self.expiry_queued = False
        """An ExpireKeys waits in the inbox."""
        self.next_expiry: datetime | None = None
        """When the app's first KV entry with a TTL runs out."""
        self.moved = False
        """The batch appended moved a schedule or set a TTL."""

    def reset(self, next_expiry: datetime | None) -> None:
        """After (re)activation: nothing queued."""
        self.next_expiry = next_expiry
        self.firing_queued = self.expiry_queued = self.moved = False

    def next_time(self) -> datetime | None:
        """When the app must wake without a delivery (None: never)."""
        return sooner(next_due(self._state()), self.next_expiry)

    def queue_due(self, now: datetime) -> datetime | None:
        """Queue what is due now; when the next of either comes otherwise."""
        due = next_due(self._state())
        if due is not None and due <= now:
            due = None
            if not self.firing_queued:
                self.firing_queued = True
                self._submit(FireSchedules(), _NO_DEADLINE)
        expiry = self.next_expiry
        if expiry is not None and expiry <= now:
            expiry = None
            if not self.expiry_queued:
                self.expiry_queued = True
                self._submit(ExpireKeys(), _NO_DEADLINE)
        return sooner(due, expiry)

    def note(self, recorded: Iterable[RecordedEvent]) -> None:
        """A batch being appended: a TTL it sets or a schedule it adds,
        removes or fires may be the app's earliest work."""
        for r in recorded:
            event = r.event
            if isinstance(event, KvSet) and event.expires_at is not None:
                self.next_expiry = sooner(self.next_expiry, event.expires_at)
                self.moved = True
            elif isinstance(event, _SCHEDULE_EVENTS):
                self.moved = True
