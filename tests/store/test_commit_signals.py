"""What a process announces to others after its commits: only the channels
it is told someone LISTENs to (a NOTIFY per commit nobody hears cost the
hosts a round trip and Postgres its work at every unbatched commit)."""

from __future__ import annotations

import asyncio

from picloud.store import ROUTING_ONLY, CommitSignals
from picloud.store.commit_signals import CHANNEL, ROUTING_CHANNEL


async def outgoing(signals: CommitSignals) -> set[str]:
    try:
        async with asyncio.timeout(0.05):
            return await signals.next_outgoing()
    except TimeoutError:
        return set()


async def test_a_host_announces_routing_changes_only() -> None:
    signals = CommitSignals(announced=ROUTING_ONLY)
    seen = signals.generation
    signals.committed(["invocation.recorded.v1", "kv.set.v1"])
    assert signals.generation == seen + 1  # its own readers still wake
    assert await outgoing(signals) == set()
    signals.committed(["route.added.v1"])
    assert await outgoing(signals) == {ROUTING_CHANNEL}


async def test_by_default_every_channel_is_announced() -> None:
    signals = CommitSignals()
    signals.committed(["route.added.v1"])
    assert await outgoing(signals) == {CHANNEL, ROUTING_CHANNEL}
