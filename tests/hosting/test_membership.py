"""Membership and placement: pure, no Ray cluster, no database."""

from __future__ import annotations

from collections import Counter

from picloud.hosting._membership import Membership, rendezvous
from picloud.store import HostRow


def rows(*names: str) -> list[HostRow]:
    return [HostRow(n, n[0], "127.0.0.1", 4000 + ord(n[0])) for n in names]


APPS = [f"app-{n}" for n in range(2000)]


def test_a_node_that_leaves_moves_its_apps_only_and_spreads_them() -> None:
    before = ["a-0", "a-1", "b-0", "b-1", "c-0", "c-1"]
    after = [n for n in before if not n.startswith("b")]
    placed = {app: rendezvous(app, before) for app in APPS}
    moved = {app for app in APPS if rendezvous(app, after) != placed[app]}
    assert moved == {app for app in APPS if placed[app].startswith("b")}
    share = Counter(rendezvous(app, after) for app in moved)
    assert set(share) == set(after)  # spread over every remaining host
    assert min(share.values()) > len(moved) / len(after) / 2


def test_a_node_that_joins_takes_about_its_share() -> None:
    before = ["a-0", "a-1"]
    after = [*before, "b-0", "b-1"]
    taken = [app for app in APPS if rendezvous(app, after).startswith("b")]
    assert 0.4 < len(taken) / len(APPS) < 0.6
    assert all(
        rendezvous(a, after) == rendezvous(a, before) for a in APPS if a not in taken
    )


def test_removals_wait_one_timeout_after_the_start_and_after_a_failed_read() -> None:
    members = Membership(timeout_s=2.0)
    assert members.update(rows("a-0", "b-0"), now=100.0)
    assert not members.update(rows("a-0"), now=101.0)  # too soon to trust a gap
    assert members.names == ["a-0", "b-0"]
    assert members.update(rows("a-0"), now=102.5)
    assert members.names == ["a-0"]
    members.failed(now=103.0)  # the database was out: rows are stale for that
    assert members.update(rows("a-0", "c-0"), now=103.5)  # additions: at once
    assert not members.update(rows("c-0"), now=104.0)
    assert members.update(rows("c-0"), now=105.5)
    assert members.names == ["c-0"]


def test_an_empty_read_keeps_the_last_members_and_an_address_change_counts() -> None:
    members = Membership(timeout_s=2.0)
    members.update(rows("a-0"), now=0.0)
    assert not members.update([], now=10.0)
    assert members.place("some-app") == "a-0"
    moved = [HostRow("a-0", "a", "127.0.0.1", 5000)]
    assert members.update(moved, now=11.0)
    assert members.rows["a-0"].port == 5000
    assert Membership(timeout_s=2.0).place("some-app") is None
