"""Rebuilding every projection from the log alone, into a schema of its own.

``Replay`` creates a fresh schema with the projection tables of the
migrations (their SQL run with the schema as search path; the ``events``
table stays the real one), reads the log in the global order and applies it
with the very functions the live path applies in each append's transaction
(``project_app``, ``project_system``), then compares the rebuilt tables with
the live ones, or with the fold of the log (``--as-of``).

Guarantees:
- The log is read in one snapshot (REPEATABLE READ), and the live tables are
  read in that same snapshot, so a running server can keep writing: the
  comparison is of the log and the projections at one instant.
- Consecutive app-stream events are projected in one call, whatever their
  transactions: the data projections keep only each key's final state and the
  control projections apply events in order, so the outcome is that of the
  live appends one by one (as-of and live comparisons check this); system
  events are applied in their own calls, in order, between them.
- Nothing outside the new schema is written. Its writes skip the wait for the
  WAL (a crash loses only the rebuild) and commit statement by statement, so
  no long transaction holds up the log's readers.

Speed: the log is read in pages (50,000 rows), decoded in bulk
(store._log_pages), the next page read while this one is decoded and folded,
and the projections written by a task of their own in chunks (up to 100,000
app events), each a few set-based statements (project_data
keeps each key's final state): Postgres reads, Python decodes and Postgres
writes at once, and a key written a thousand times is upserted once a chunk.

Compared tables: :data:`PROJECTIONS`. Not rebuilt: :data:`NOT_FROM_THE_LOG`.
Every column of a compared table is a function of the log; none is excluded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import operator
import re
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec

from picloud.config import Settings
from picloud.domain.redaction import public_json
from picloud.errors import InvalidInput
from picloud.events import RecordedEvent
from picloud.events.data_state import DataState
from picloud.store._errors import translate_errors
from picloud.store._log_pages import log_pages
from picloud.store._pool import connect
from picloud.store._projections import UNPROJECTED_TYPES, project_app, project_system
from picloud.store.migrations import default_migrations_dir, load_migrations

__all__ = ["NOT_FROM_THE_LOG", "PROJECTIONS", "Replay", "TableDiff"]

PROJECTIONS: dict[str, str | None] = {
    "apps": "id",
    "users": None,
    "memberships": "app_id",
    "api_keys": None,
    "scripts": "app_id",
    "script_imports": "app_id",
    "routes": "app_id",
    "triggers": "app_id",
    "dead_letters": "app_id",
    "abandoned_executions": "app_id",
    "quarantined_apps": "app_id",
    "kv_entries": "app_id",
    "docs": "app_id",
    "doc_values": "app_id",
    "app_settings": "app_id",
    "app_secrets": "app_id",
}
"""Each projection and its column naming the app (None: not an app's; it is
rebuilt from the whole system stream even for one app)."""

NOT_FROM_THE_LOG = {
    "app_wakeups": "when an app must wake for its deliveries: lowered by each "
    "append, raised lazily by a Wake command (a schedule, not a fold)",
    "snapshots": "a cache of actor state",
    "sessions": "dashboard sessions (never events)",
    "api_key_usage": "last use of each key (never events)",
    "login_throttle": "failed sign-ins (never events)",
    "fetch_journal": "what http.fetch answered a delivery's attempt, until its"
    " record is durable (so a retried commit does not fetch again)",
    "app_hosts": "the live app hosts and their heartbeats",
}

_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_PAGE = 50_000  # rows per read of the log
_CHUNK = 100_000  # app events per call of project_app (bounds memory)
_SHOWN = 10
_STREAM = operator.attrgetter("stream")


@dataclass
class _Chunk:
    """Consecutive events of app streams, or of the system stream, to project
    in one call."""

    events: list[RecordedEvent]
    system: bool


@dataclass
class TableDiff:
    """A table that differs: row counts and some rows of each side only
    (as redacted JSON)."""

    table: str
    live: int
    rebuilt: int
    only_live: list[str] = field(default_factory=list)
    only_rebuilt: list[str] = field(default_factory=list)


class Replay:
    """One rebuild into ``schema``; see the module docstring."""

    def __init__(
        self, reader: asyncpg.Connection, writer: asyncpg.Connection, schema: str
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.schema = schema
        self._snapshot: Any = None
        self.events = 0
        self.seconds = 0.0
        self.page = _PAGE
        self.chunk = _CHUNK
        """Rows per read and app events per projection call (memory bounds)."""
        self.folds: dict[str, DataState] = {}
        """Each app's data folded from the events read (for ``compare_fold``)."""

    @classmethod
    async def open(cls, dsn: str, settings: Settings, schema: str) -> Replay:
        """Create ``schema`` with the projection tables (it must not exist).

        Raises:
            InvalidInput: a bad or taken schema name.
        """
        if not _SCHEMA.fullmatch(schema) or schema in ("public", "pg_catalog"):
            raise InvalidInput(f"{schema[:70]!r} is not a schema name a replay may use")
        reader = await connect(dsn, settings)
        writer = await connect(dsn, settings)
        try:
            with translate_errors("create the replay schema"):
                for conn in (reader, writer):  # ours alone: long reads are fine
                    await conn.execute(
                        "SET statement_timeout = 0;"
                        " SET idle_in_transaction_session_timeout = 0"
                    )
                await _create_schema(writer, schema)
        except BaseException:
            await reader.close()
            await writer.close()
            raise
        return cls(reader, writer, schema)

    @classmethod
    async def into_live(cls, dsn: str, settings: Settings) -> Replay:
        """A rebuild into the live tables themselves, for a restore: they
        must hold nothing yet (a database that has only the restored log)."""
        reader = await connect(dsn, settings)
        writer = await connect(dsn, settings)
        for conn in (reader, writer):
            await conn.execute(
                "SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0"
            )
        return cls(reader, writer, "public")

    async def rebuild(
        self, *, app_id: str | None = None, upto_position: int | None = None
    ) -> None:
        """Apply the log (one app's stream and the system stream, or all of it;
        up to a position, or all) to the new schema's projections."""
        started = time.perf_counter()
        self._snapshot = self._reader.transaction(
            isolation="repeatable_read", readonly=True
        )
        streams = None if app_id is None else ["system", f"app-{app_id}"]
        with translate_errors("replay"):
            await self._snapshot.start()
            try:
                await self._pipeline(streams, upto_position)
            except BaseExceptionGroup as group:
                raise _first(group) from None
        self.seconds = time.perf_counter() - started

    async def _pipeline(self, streams: list[str] | None, upto: int | None) -> None:
        """Read and decode pages (log_pages: the next page is read meanwhile)
        and fold them here, while a task projects the chunks made so far:
        Postgres reads, Python decodes and Postgres writes at once."""
        chunks: asyncio.Queue[_Chunk | None] = asyncio.Queue(maxsize=1)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._project_chunks(chunks))
            chunk = _Chunk([], system=False)
            pages = log_pages(
                self._reader,
                skip_types=UNPROJECTED_TYPES,
                streams=streams,
                upto_position=upto,
                page=self.page,
            )
            # closed even when the projection fails: its read in flight ends
            async with contextlib.aclosing(pages):
                async for page in pages:
                    for run, system in _runs(page):
                        if not system:
                            self._fold(run)
                        if chunk.system != system or len(chunk.events) >= self.chunk:
                            await chunks.put(chunk)
                            chunk = _Chunk([], system=system)
                        chunk.events += run
            await chunks.put(chunk)
            await chunks.put(None)

    async def _project_chunks(self, chunks: asyncio.Queue[_Chunk | None]) -> None:
        while (chunk := await chunks.get()) is not None:
            self.events += len(chunk.events)
            if chunk.system:
                await project_system(self._writer, chunk.events)
            elif chunk.events:
                await project_app(self._writer, chunk.events)

    def _fold(self, run: list[RecordedEvent]) -> None:
        """Fold app-stream events into their apps' data (a stream at a time)."""
        for _, group in itertools.groupby(run, _STREAM):
            events = [recorded.event for recorded in group]
            app_id = getattr(events[0], "app_id", None)
            if isinstance(app_id, str):
                state = self.folds.get(app_id)
                if state is None:
                    state = self.folds[app_id] = DataState()
                state.apply_all(events)

    async def compare_live(self, *, app_id: str | None = None) -> list[TableDiff]:
        """The tables where the rebuild differs from the live projections as
        they were in the snapshot the log was read in."""
        diffs = []
        with translate_errors("compare with the live projections"):
            for table, column in PROJECTIONS.items():
                where, args = _scope(column, app_id)
                live = await _hashes(self._reader, f"public.{table}", where, args)
                rebuilt = await _hashes(
                    self._writer, f"{self.schema}.{table}", where, args
                )
                if live != rebuilt:
                    diffs.append(await self._diff(table, live, rebuilt, where, args))
        return diffs

    async def _diff(
        self,
        table: str,
        live: list[str],
        rebuilt: list[str],
        where: str,
        args: list[Any],
    ) -> TableDiff:
        only_live = sorted(set(live) - set(rebuilt))[:_SHOWN]
        only_rebuilt = sorted(set(rebuilt) - set(live))[:_SHOWN]
        return TableDiff(
            table,
            len(live),
            len(rebuilt),
            await _rows(self._reader, f"public.{table}", only_live),
            await _rows(self._writer, f"{self.schema}.{table}", only_rebuilt),
        )

    async def compare_fold(self) -> list[TableDiff]:
        """Where the rebuilt KV entries and documents differ from the fold of
        the events read (events.data_state): what as-of must be."""
        with translate_errors("compare with the fold of the log"):
            kv = await self._writer.fetch(
                f"SELECT app_id, collection, key, value::text AS v"  # noqa: S608  # a checked schema name
                f" FROM {self.schema}.kv_entries"
            )
            docs = await self._writer.fetch(
                "SELECT app_id, collection, id, data::text AS v, created_at,"  # noqa: S608  # a checked schema name
                f" updated_at FROM {self.schema}.docs"
            )
        rebuilt_kv = {(r[0], r[1], r[2]): _json(r[3]) for r in kv}
        rebuilt_docs = {(r[0], r[1], r[2]): (_json(r[3]), r[4], r[5]) for r in docs}
        fold_kv: dict[tuple[str, str, str], Any] = {}
        fold_docs: dict[tuple[str, str, str], Any] = {}
        for app, state in self.folds.items():
            for (c, k), value in state.kv.items():
                fold_kv[app, c, k] = _json(value)
            for (c, i), doc in state.docs.items():
                fold_docs[app, c, i] = (_json(doc.data), doc.created_at, doc.updated_at)
        return [
            diff
            for diff in (
                _dict_diff("kv_entries", fold_kv, rebuilt_kv),
                _dict_diff("docs", fold_docs, rebuilt_docs),
            )
            if diff is not None
        ]

    async def close(self, *, keep: bool) -> None:
        """End the read; drop the schema unless ``keep`` (never the live one)."""
        try:
            if self._snapshot is not None:
                await self._snapshot.rollback()
            if not keep and self.schema != "public":
                with translate_errors("drop the replay schema"):
                    await self._writer.execute(f"DROP SCHEMA {self.schema} CASCADE")
        finally:
            await self._reader.close()
            await self._writer.close()


async def _create_schema(conn: asyncpg.Connection, schema: str) -> None:
    """The schema with every table of the migrations but ``events``, which
    unqualified names then find in public (the search path's second place)."""
    exists = await conn.fetchval(
        "SELECT 1 FROM pg_namespace WHERE nspname = $1", schema
    )
    if exists:
        raise InvalidInput(f"schema {schema!r} exists; a replay needs a new one")
    await conn.execute(f"CREATE SCHEMA {schema}; SET search_path = {schema}")
    for migration in load_migrations(default_migrations_dir()):
        async with conn.transaction():
            await conn.execute(migration.sql)
    await conn.execute(
        f"DROP TABLE {schema}.events; SET search_path = {schema}, public;"
        " SET synchronous_commit = off"
    )


def _scope(column: str | None, app_id: str | None) -> tuple[str, list[Any]]:
    if column is None or app_id is None:
        return "", []
    return f" WHERE t.{column} = $1", [app_id]


async def _hashes(
    conn: asyncpg.Connection, table: str, where: str, args: list[Any]
) -> list[str]:
    """The md5 of each row's text, in order (a multiset: some tables have no key)."""
    rows = await conn.fetch(
        f"SELECT md5(t::text) FROM {table} t{where} ORDER BY 1",  # noqa: S608  # fixed names
        *args,
    )
    return [row[0] for row in rows]


async def _rows(conn: asyncpg.Connection, table: str, hashes: list[str]) -> list[str]:
    if not hashes:
        return []
    rows = await conn.fetch(
        f"SELECT row_to_json(t)::text FROM {table} t"  # noqa: S608  # fixed names
        " WHERE md5(t::text) = ANY($1::text[])",
        hashes,
    )
    return [public_json(row[0].encode()).decode() for row in rows]


def _json(text: str | bytes) -> Any:
    return msgspec.json.decode(text)


def _dict_diff(
    table: str, expected: dict[Any, Any], rebuilt: dict[Any, Any]
) -> TableDiff | None:
    if expected == rebuilt:
        return None
    encode = msgspec.json.encode
    wrong = [k for k in expected if rebuilt.get(k) != expected[k]]
    extra = [k for k in rebuilt if k not in expected]
    return TableDiff(
        table,
        len(expected),
        len(rebuilt),
        [public_json(encode([*k, expected[k]])).decode() for k in wrong[:_SHOWN]],
        [public_json(encode([*k, rebuilt[k]])).decode() for k in extra[:_SHOWN]],
    )


def _runs(page: list[RecordedEvent]) -> list[tuple[list[RecordedEvent], bool]]:
    """``page`` cut where it passes between the system stream and app streams
    (most pages hold no system event: they are one run, found in C)."""
    streams = [recorded.stream for recorded in page]
    if "system" not in streams:
        return [(page, False)]
    return [
        (list(group), system) for system, group in itertools.groupby(page, _is_system)
    ]


def _is_system(recorded: RecordedEvent) -> bool:
    return recorded.stream == "system"


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that stopped the pipeline (the others are its cancellations)."""
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return _first(error)
        if not isinstance(error, asyncio.CancelledError):
            return error
    return group.exceptions[0]
