"""Waits between retries that grow while a failure lasts."""

from __future__ import annotations

__all__ = ["Backoff"]


class Backoff:
    """Waits of ``first``, then doubling up to ``most`` seconds, until :meth:`reset`."""

    def __init__(self, first: float = 0.2, most: float = 5.0) -> None:
        self._first = first
        self._most = most
        self._next = first
        self.failures = 0
        """Failures since the last reset."""

    def next(self) -> float:
        """The wait before the next try; counts a failure."""
        delay = self._next
        self._next = min(delay * 2, self._most)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self._next = self._first
        self.failures = 0
