"""A shared host's heartbeat: "alive, listening here", and who else is.

Every ``host_heartbeat_interval_ms`` the host writes its row in the registry
and reads back the live hosts in the same statement (see
:class:`~picloud.store.HostRegistry`); ``on_beat`` gets the members after
each beat, and whether they changed, so the host can let go of the apps that
now belong elsewhere. A beat that fails (the database is out) is logged at
most once a minute; the next one tries again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from picloud.config import Settings
from picloud.errors import PiCloudError
from picloud.hosting._membership import Membership
from picloud.store import HostRegistry, HostRow

__all__ = ["Heartbeat"]

log = logging.getLogger(__name__)

OnBeat = Callable[[list[str], bool], None]
_FORGET_AFTER_S = 24 * 3600.0


class Heartbeat:
    """See the module docstring."""

    def __init__(
        self, registry: HostRegistry, me: HostRow, settings: Settings, on_beat: OnBeat
    ) -> None:
        self._registry = registry
        self._me = me
        self._interval_s = settings.host_heartbeat_interval_ms / 1000
        self._timeout_s = settings.host_heartbeat_timeout_ms / 1000
        self._on_beat = on_beat
        self.membership = Membership(self._timeout_s)
        self._left = False
        self._lock = asyncio.Lock()
        self._warned = -math.inf

    async def beat(self) -> None:
        """One beat; a failure is logged, never raised."""
        async with self._lock:  # never after leave(), never during it
            if self._left:
                return
            try:
                # A beat slower than the interval is worth no more than the next.
                async with asyncio.timeout(max(self._interval_s, 1.0)):
                    rows = await self._registry.beat(
                        self._me, timeout_s=self._timeout_s
                    )
            except (PiCloudError, TimeoutError) as e:
                self.membership.failed(time.monotonic())
                if time.monotonic() - self._warned > 60:
                    self._warned = time.monotonic()
                    log.warning("host %s could not beat: %s", self._me.name, e)
                return
        changed = self.membership.update(rows, time.monotonic())
        self._on_beat(self.membership.names, changed)

    async def run(self) -> None:
        """Beat forever (until :meth:`leave`); old rows of gone hosts are dropped."""
        try:
            await self._registry.forget_older_than(_FORGET_AFTER_S)
        except PiCloudError as e:
            log.warning("could not drop the rows of old hosts: %s", e)
        while not self._left:
            await asyncio.sleep(self._interval_s)
            await self.beat()

    async def leave(self) -> None:
        """Stop beating and delete the row: front doors drop the host at their
        next refresh instead of after the timeout."""
        async with self._lock:
            self._left = True
            await self._registry.leave(self._me.name)
