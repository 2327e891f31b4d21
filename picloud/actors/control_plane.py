"""The ControlPlane: the one writer of the ``system`` stream (apps and identity).

Plain Python, testable without Ray; :mod:`picloud.hosting.control_actor` hosts it.

Guarantees:
- Commands run one at a time, in arrival order.
- Before deciding, the plane catches up on the stream (one indexed read that
  finds nothing in the common case), so commands written meanwhile by another
  process — the CLI's ``admin`` commands — are part of the decision.
- Each accepted command is appended with the expected stream version and its
  projection rows in the same transaction; if another process wrote the
  stream between the catch-up and the append, the plane reloads and decides
  again.
- A command that changes nothing (revoking a revoked key) appends nothing.
- A command with an idempotency key already seen answers the first result
  and appends nothing.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from picloud.domain.system import SystemCommand, decide_system
from picloud.errors import VersionConflict
from picloud.events import Event, EventMeta, RecordedEvent
from picloud.events.system_state import SystemState, evolve_system
from picloud.store import EventLog

__all__ = ["SYSTEM_STREAM", "ControlPlane"]

SYSTEM_STREAM = "system"
_CONFLICT_RETRIES = 5
_REMEMBERED_KEYS = 10_000


class ControlPlane:
    """Decides and records system commands; see the module docstring."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self._state = SystemState()
        self._lock = asyncio.Lock()
        self._answers: OrderedDict[str, list[RecordedEvent]] = OrderedDict()

    @property
    def state(self) -> SystemState:
        return self._state

    async def catch_up(self) -> None:
        """Apply every system event written since the state's version."""
        while True:
            batch = await self._log.read_stream(SYSTEM_STREAM, self._state.version)
            if not batch:
                return
            for recorded in batch:
                self._remember(recorded)
                self._state = evolve_system(self._state, recorded)

    async def execute(
        self, command: SystemCommand, meta: EventMeta
    ) -> list[RecordedEvent]:
        """Decide, append and apply ``command``; return the recorded events."""
        async with self._lock:
            key = meta.idempotency_key
            await self.catch_up()
            if key is not None and key in self._answers:
                return self._answers[key]
            for _ in range(_CONFLICT_RETRIES):
                events = decide_system(self._state, command)
                if not events:
                    return []
                try:
                    recorded = await self._append(events, meta)
                except VersionConflict:
                    await self.catch_up()
                    if key is not None and key in self._answers:
                        return self._answers[key]
                    continue
                for r in recorded:
                    self._remember(r)
                    self._state = evolve_system(self._state, r)
                return recorded
            raise VersionConflict(SYSTEM_STREAM, self._state.version)

    async def _append(
        self, events: list[Event], meta: EventMeta
    ) -> list[RecordedEvent]:
        async with self._log.transaction() as tx:
            recorded = await tx.append(SYSTEM_STREAM, self._state.version, events, meta)
            await tx.project_system(recorded)
        return recorded

    def _remember(self, recorded: RecordedEvent) -> None:
        key = recorded.meta.idempotency_key
        if key is None:
            return
        self._answers.setdefault(key, []).append(recorded)
        self._answers.move_to_end(key)
        while len(self._answers) > _REMEMBERED_KEYS:
            self._answers.popitem(last=False)
