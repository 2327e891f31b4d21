"""Which shared hosts are alive now, and which of them an app belongs to.

Placement is rendezvous hashing of the app id over the names of the live
hosts: when a host leaves, only its apps move (each to the host that scores
next); when one joins, it takes the apps that now score highest on it. Hosts
are named after their node (``picloud-host-<node>-<i>``), so a node that
leaves or joins moves about its share of the apps and no more.

Front doors and hosts read the same registry and apply the same rules, so
they agree on placement except for the moment between two refreshes; a
writer that did not see a change in time is stopped by the stream version
key (DESIGN.md: one writer per app is Postgres's to enforce).
"""

from __future__ import annotations

import hashlib

from picloud.store import HostRow

__all__ = ["Membership", "rendezvous"]


def rendezvous(key: str, names: list[str]) -> str:
    """The name with the highest hash of (key, name)."""

    def score(name: str) -> bytes:
        return hashlib.blake2b(f"{key}\0{name}".encode(), digest_size=8).digest()

    return max(names, key=score)


class Membership:
    """The live shared hosts as last read from the registry.

    A host leaves when the registry stops listing it (no host of its node
    beat within the heartbeat timeout, or it left). Rows go stale for another
    reason when the database itself was out (nobody could beat), so for one
    timeout after a failed read — and after the first read — hosts are added
    but none removed. A read that finds no host at
    all keeps the last members: there is nothing better to place apps on.
    """

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self.rows: dict[str, HostRow] = {}
        self.names: list[str] = []
        self._removals_from: float | None = None

    def failed(self, now: float) -> None:
        """The registry could not be read at ``now`` (monotonic seconds)."""
        self._removals_from = now + self._timeout_s

    def update(self, rows: list[HostRow], now: float) -> bool:
        """Take a fresh read; True when the members or their addresses changed."""
        if self._removals_from is None:
            self._removals_from = now + self._timeout_s
        fresh = {row.name: row for row in rows}
        if now < self._removals_from or not fresh:
            fresh = {**self.rows, **fresh}
        if fresh == self.rows:
            return False
        self.rows = fresh
        self.names = sorted(fresh)
        return True

    def place(self, app_id: str) -> str | None:
        """The live host the app belongs to; None when no host is known."""
        return rendezvous(app_id, self.names) if self.names else None
