"""The registry of live app hosts (table ``app_hosts``, migration 0019).

Each shared AppHost writes its row (name, node, channel address) every
heartbeat interval; a host is alive while some host of its node has beaten
within the heartbeat timeout (see ``_BEAT``). Every time is the database's own
``now()``, so the clocks of the nodes never matter. Rows are operational
state, not history: updated in place, deleted by a host that leaves.
"""

from __future__ import annotations

import asyncpg
import msgspec

from picloud.store._errors import translate_errors

__all__ = ["HostRegistry", "HostRow"]

# A host is alive while its node is: while some host of its node beats. So a
# host process that died on a live node keeps its apps while Ray restarts it
# (under the same name, on the same node), and only a node that falls silent
# as a whole loses its hosts. Nodes get a new id at every start.
#
# The upsert and the read share a statement (one round trip); the read cannot
# see the upsert's row, so that one comes from its RETURNING.
_BEAT = """
WITH me AS (
    INSERT INTO app_hosts (name, node_id, host, port) VALUES ($1, $2, $3, $4)
    ON CONFLICT (name) DO UPDATE
    SET node_id = $2, host = $3, port = $4, beat_at = now()
    RETURNING name, node_id, host, port
)
SELECT name, node_id, host, port FROM app_hosts h
WHERE name <> $1 AND (node_id = $2 OR EXISTS (
    SELECT 1 FROM app_hosts n
    WHERE n.node_id = h.node_id AND n.beat_at > now() - make_interval(secs => $5)))
UNION ALL SELECT name, node_id, host, port FROM me
"""
_ALIVE = """
SELECT name, node_id, host, port FROM app_hosts h
WHERE EXISTS (
    SELECT 1 FROM app_hosts n
    WHERE n.node_id = h.node_id AND n.beat_at > now() - make_interval(secs => $1))
"""


class HostRow(msgspec.Struct, frozen=True):
    """One live host: where its channel listens."""

    name: str
    node_id: str
    host: str
    port: int


def _rows(records: list[asyncpg.Record]) -> list[HostRow]:
    return [HostRow(r["name"], r["node_id"], r["host"], r["port"]) for r in records]


class HostRegistry:
    """Heartbeats and the live hosts; see the module docstring."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def beat(self, me: HostRow, *, timeout_s: float) -> list[HostRow]:
        """Record that ``me`` is alive; the live hosts, ``me`` among them."""
        with translate_errors("host heartbeat"):
            records = await self._pool.fetch(
                _BEAT, me.name, me.node_id, me.host, me.port, timeout_s
            )
        return _rows(records)

    async def alive(self, *, timeout_s: float) -> list[HostRow]:
        """The hosts of the nodes some host of which beat within ``timeout_s``."""
        with translate_errors("live hosts"):
            records = await self._pool.fetch(_ALIVE, timeout_s)
        return _rows(records)

    async def leave(self, name: str) -> None:
        """Remove the host's row: front doors stop placing apps on it at their
        next refresh, without waiting for the heartbeat timeout."""
        with translate_errors("host leave"):
            await self._pool.execute("DELETE FROM app_hosts WHERE name = $1", name)

    async def forget_older_than(self, seconds: float) -> None:
        """Delete the rows of hosts gone this long (names change with nodes)."""
        with translate_errors("forget old hosts"):
            await self._pool.execute(
                "DELETE FROM app_hosts"
                " WHERE beat_at < now() - make_interval(secs => $1)",
                seconds,
            )
