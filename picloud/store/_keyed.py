"""Deletes of rows named by (app, collection, key) arrays, by index probes.

A ``DELETE … USING unnest(…)`` is right for the first executions of its
prepared statement, but once Postgres caches a generic plan (made while the
app was small, blind to how few keys the arrays hold) it hashes every row of
the app on every write: measured 2 ms at 5,000 entries, 10 ms at 30,000. Here
each key is one lateral index probe (LIMIT/OFFSET keeps the planner from
flattening it back into that join) and the rows go by ctid. The ctids cannot
go stale: an app's rows change only in its actor's append transaction, and
appends to one stream are serialised by the events' unique
(stream, stream_version).
"""

from __future__ import annotations

__all__ = ["delete_by_keys"]


def delete_by_keys(table: str, key_column: str, *, one_row_per_key: bool) -> str:
    """The DELETE of ``table``'s rows whose ``(app_id, collection, key_column)``
    is one of the triples of the text arrays $1, $2, $3."""
    rows = "LIMIT 1" if one_row_per_key else "OFFSET 0"
    return f"""
DELETE FROM {table} WHERE ctid = ANY(ARRAY(
    SELECT x.ctid FROM unnest($1::text[], $2::text[], $3::text[]) AS d(a, c, k)
    CROSS JOIN LATERAL (
        SELECT t.ctid FROM {table} t
        WHERE t.app_id = d.a AND t.collection = d.c AND t.{key_column} = d.k {rows}
    ) AS x
))
"""  # noqa: S608  # names from this package's callers, never from input
