"""Schedule triggers: which times are due, decided from the log (pure).

A schedule fires for a time of its cron expression, read in its time zone.
The app's actor (its stream's one writer) decides firings from its state,
folded from the log, and records each as a ``ScheduleFired`` event; the
fold of pending deliveries turns it into an ordinary delivery (retries,
dead letters). So a time fires once across hosts and restarts: a second
writer fails the stream's version check, and after a restart the state
knows the latest fired time. Times missed while nothing ran collapse into
one catch-up firing, for the latest of them.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, croniter

from picloud.errors import InvalidInput
from picloud.events import utcnow
from picloud.events.app_state import AppState
from picloud.events.pending import TriggerInfo
from picloud.events.triggers import ScheduleFired

__all__ = [
    "check_schedule",
    "decide_firings",
    "due_time",
    "next_due",
    "next_time",
    "time_after",
]

_MAX_CRON = 200


def _zone(timezone: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {str(timezone)[:60]!r} (an IANA name: Europe/Paris)"
        ) from None


def check_schedule(cron: str | None, timezone: str | None) -> None:
    """Refuse a cron expression croniter cannot follow, or an unknown zone."""
    if not cron:
        raise InvalidInput("a schedule trigger needs a cron expression")
    fields = cron.split()
    if len(cron) > _MAX_CRON or len(fields) not in (5, 6):
        raise InvalidInput(
            "cron must have 5 fields (minute hour day month weekday), or 6 "
            "with seconds last"
        )
    _zone(timezone)
    try:
        croniter(cron, datetime.now(UTC))
    except (CroniterBadCronError, ValueError, KeyError) as e:
        raise InvalidInput(f"invalid cron expression {cron[:60]!r}: {e}") from None


def _base(trigger: TriggerInfo) -> datetime:
    """Times after this are the trigger's to fire."""
    return trigger.last_fired or trigger.added_at or utcnow()


def next_time(trigger: TriggerInfo, after: datetime | None = None) -> datetime:
    """The trigger's first time after ``after`` (default: its latest firing, or
    when it was added), in UTC."""
    return time_after(trigger.cron or "", trigger.timezone, after or _base(trigger))


@functools.lru_cache(maxsize=4_096)
def time_after(cron: str, timezone: str | None, after: datetime) -> datetime:
    """The first time of ``cron`` (read in ``timezone``) after ``after``, in UTC.

    Memoized: an app's actor asks for its schedules' next times after every
    batch it appends (the timer and the wake-up time), and the answer only
    moves when a schedule fires or changes; croniter costs tens of µs."""
    start = after.astimezone(_zone(timezone))
    found: datetime = croniter(cron, start).get_next(datetime)
    return found.astimezone(UTC)


def due_time(trigger: TriggerInfo, now: datetime) -> datetime | None:
    """The latest time of the trigger at or before ``now`` not yet fired."""
    zone = _zone(trigger.timezone)
    # get_prev answers the time strictly before its start: start just after now.
    start = (now + timedelta(microseconds=1)).astimezone(zone)
    latest: datetime = croniter(trigger.cron or "", start).get_prev(datetime)
    latest = latest.astimezone(UTC)
    return latest if latest > _base(trigger) else None


def _schedules(state: AppState) -> list[TriggerInfo]:
    return [t for t in state.triggers.values() if t.cron]


def decide_firings(state: AppState, now: datetime) -> list[ScheduleFired]:
    """One firing per schedule with a time due (the latest, if several were
    missed)."""
    fired = []
    for trigger in _schedules(state):
        due = due_time(trigger, now)
        if due is not None:
            fired.append(
                ScheduleFired(
                    at=now, app_id=state.app_id, trigger_id=trigger.id, scheduled_at=due
                )
            )
    return fired


def next_due(state: AppState) -> datetime | None:
    """When the app's next schedule time comes (None: it has no schedule)."""
    times = [next_time(t) for t in _schedules(state)]
    return min(times) if times else None
