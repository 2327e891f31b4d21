"""Each app's CPU budget: a token bucket of script CPU milliseconds.

An app may use ``rate`` ms of CPU per second over time and ``burst`` ms at
once; its invocations are charged what they used (measured on the thread
that ran them). Past the budget, new requests are refused (429 with the
seconds until the bucket is back above zero), so an app that keeps burning
CPU is held to its share however many clients call it.
"""

from __future__ import annotations

import time

__all__ = ["CpuBudget"]


class CpuBudget:
    """A token bucket of CPU milliseconds (see the module docstring)."""

    def __init__(self, *, rate_ms_per_s: float, burst_ms: float) -> None:
        self._rate = rate_ms_per_s
        self._burst = burst_ms
        self._level = burst_ms
        self._at = time.monotonic()
        self.throttling = False
        """Refusing since the last time the bucket was found empty."""

    def _refill(self) -> float:
        now = time.monotonic()
        self._level = min(self._burst, self._level + (now - self._at) * self._rate)
        self._at = now
        return self._level

    def charge(self, cpu_ms: float) -> None:
        self._refill()
        self._level -= cpu_ms

    def wait_s(self) -> float:
        """Seconds until the app may run again (0: now)."""
        level = self._refill()
        if level > 0:
            self.throttling = False
            return 0.0
        return -level / self._rate + 0.001

    @property
    def used_ms(self) -> float:
        """How far the bucket is below full."""
        return self._burst - self._refill()
