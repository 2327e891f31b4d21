"""Work the front door hands to apps on a clock: due deliveries and retention.

Both loops are safe to run in several front doors at once: waking an app is
harmless, and an app's actor (its stream's one writer) turns a repeated
expiry into no events.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import timedelta

from picloud.config import Settings
from picloud.domain.commands import Command, Expire, Wake
from picloud.errors import PiCloudError
from picloud.events import utcnow
from picloud.hosting.host_pool import HostPool
from picloud.store import SchedulerStore

__all__ = ["sweep_retention", "wake_due_apps"]

log = logging.getLogger(__name__)

_CALL_TIMEOUT_S = 30.0


async def _tell(hosts: HostPool, app_id: str, command: Command) -> None:
    try:
        await hosts.call(app_id, command, _CALL_TIMEOUT_S)
    except PiCloudError as e:
        log.warning(
            "could not reach app %s for %s: %s", app_id, type(command).__name__, e
        )


async def wake_due_apps(
    store: SchedulerStore, hosts: HostPool, settings: Settings
) -> None:
    """Forever: activate the apps with deliveries due (retries, and work a crash
    left behind), so they run them even when nothing else calls them."""
    interval = settings.delivery_wake_interval_ms / 1000
    warned = -math.inf
    while True:
        try:
            due = await store.due_wakeups()
            await asyncio.gather(*(_tell(hosts, app_id, Wake()) for app_id in due))
        except PiCloudError as e:
            if time.monotonic() - warned > 60:  # not once a second in an outage
                warned = time.monotonic()
                log.warning("wake-up scan failed: %s", e)
        await asyncio.sleep(interval)


async def sweep_retention(
    store: SchedulerStore, hosts: HostPool, settings: Settings
) -> None:
    """Forever: expire old dead letters and abandoned executions, as events."""
    while True:
        try:
            now = utcnow()
            letters = await store.expired_dead_letters(
                now - timedelta(days=settings.dead_letter_retention_days)
            )
            abandoned = await store.expired_abandoned(
                now - timedelta(days=settings.abandoned_executions_retention_days)
            )
            commands = {
                app_id: Expire(
                    dead_letters=letters.get(app_id, []),
                    abandoned=abandoned.get(app_id, []),
                )
                for app_id in letters.keys() | abandoned.keys()
            }
            await asyncio.gather(*(_tell(hosts, a, c) for a, c in commands.items()))
        except PiCloudError as e:
            log.warning("retention sweep failed: %s", e)
        await asyncio.sleep(settings.retention_sweep_interval_s)
