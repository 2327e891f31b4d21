"""Every table the migrations make is either rebuilt by ``picloud replay``
(and compared with the live one) or named as not a function of the log: a
table added later without a decision fails here."""

from __future__ import annotations

import re

from picloud.store.migrations import default_migrations_dir, load_migrations
from picloud.store.replay import NOT_FROM_THE_LOG, PROJECTIONS

_CREATED = re.compile(r"CREATE TABLE (\w+)")
_DROPPED = re.compile(r"DROP TABLE (\w+)")


def test_every_table_is_rebuilt_by_replay_or_said_not_to_be_from_the_log() -> None:
    tables: set[str] = set()
    for migration in load_migrations(default_migrations_dir()):
        tables |= set(_CREATED.findall(migration.sql))
        tables -= set(_DROPPED.findall(migration.sql))
    tables.discard("events")  # the log itself
    assert set(PROJECTIONS).isdisjoint(NOT_FROM_THE_LOG)
    assert tables == set(PROJECTIONS) | set(NOT_FROM_THE_LOG)
