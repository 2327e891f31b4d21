"""What-if: a script's recorded invocations run again with another source.

An app's actor hands :class:`WhatIf` commands to its :class:`WhatIfRunner`,
which answers per invocation what the script did then and what the new
source does with the same input and the same data (domain.what_if).

Guarantees:
- Dry: nothing is appended and nothing the actor holds is touched. The runs
  read the app's stream, fold it here, and run on a runtime of their own
  with the app's limits, watched by the host's watchdog (a run that
  overruns its hard deadline takes the host down as a live one would).
- Beside the queue: the app's commands keep running meanwhile; what-ifs of
  one app run one at a time.
- As of then: each run sees the app's scripts, routes and triggers (its own
  script in the new version) and its KV entries and documents as of its
  original run — the fold of the stream up to the run's own writes, which
  the log holds just before its record. Reads and writes of the run stay in
  memory (actors._as_of_data).
- Its input: a sync route's request from its record (``record_requests``;
  credentials come redacted); a trigger's ``ctx.event`` and an async
  route's request from the delivery the run was an attempt of, as the fold
  of the stream finds it just before the record.
- Bounded: at most ``what_if_max_invocations`` runs (counted before any
  runs; more is refused, naming the limit), within ``what_if_timeout_ms``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

import msgspec
from pyrsistent import pmap

from picloud.actors._app_data import KvIntent
from picloud.actors._as_of_data import AsOfData
from picloud.actors.invoker import Invoker, Job, Recording
from picloud.actors.protocol import Done, Reply, failure_of
from picloud.actors.sdk import DataAccess
from picloud.config import Settings
from picloud.domain import delivery_policy as policy
from picloud.domain.access import SCRIPT_DEFAULT, Capability
from picloud.domain.app import decide_save_script
from picloud.domain.commands import SaveScript, WhatIf
from picloud.domain.what_if import (
    NewRun,
    RunView,
    WhatIfAnswer,
    WhatIfItem,
    changed,
    response_view,
    write_view,
)
from picloud.errors import (
    ActorUnavailable,
    CommandTimeout,
    InvalidInput,
    NotFound,
    PiCloudError,
)
from picloud.events import Event, RecordedEvent
from picloud.events.app import DataEvent, InvocationRecorded, ScriptSaved
from picloud.events.app_state import AppState, evolve_app
from picloud.events.data_state import DataState
from picloud.events.pending import Deliveries, Delivery, evolve_deliveries
from picloud.events.triggers import DeadLetterReplayed, DeadLetterResolved
from picloud.scripting import AppInfo, Watchdog
from picloud.scripting.modules import prepare
from picloud.store import AppStore

__all__ = ["WhatIfRunner"]

log = logging.getLogger(__name__)

_READ_BATCH = 5_000
# What a run may have written: the events its command appended before its record.
_WRITES: frozenset[type] = frozenset(
    {*DataEvent.__args__, DeadLetterReplayed, DeadLetterResolved}
)


@dataclass
class _Case:
    """One recorded invocation to run again, with what it wrote then."""

    recorded: RecordedEvent
    run: InvocationRecorded
    writes: list[Event]
    delivery: Delivery | None


@dataclass
class _Fold:
    """The app's stream folded event by event: control state, pending
    deliveries and data. The writes of a command are held back until the
    next event shows whose they were, so a run finds the data as it was
    before its own writes (see :meth:`feed`)."""

    script_id: str
    first: int
    last: int
    state: AppState
    deliveries: Deliveries = field(default_factory=pmap)
    data: DataState = field(default_factory=DataState)
    held: list[RecordedEvent] = field(default_factory=list)

    def feed(self, recorded: RecordedEvent) -> _Case | None:
        """Fold ``recorded``; a wanted invocation comes back as a case, its
        writes still held (:meth:`settle` once it has run)."""
        event = recorded.event
        self.state = evolve_app(self.state, event)
        case = None
        if type(event) is InvocationRecorded and self._wanted(recorded, event):
            if not (self.held and _same_command(self.held[-1], recorded)):
                self.settle()
            delivery = None
            if event.delivery_id is not None:
                delivery = self.deliveries.get(event.delivery_id)
            case = _Case(recorded, event, [r.event for r in self.held], delivery)
        self.deliveries = evolve_deliveries(
            self.deliveries, self.state.triggers, recorded
        )
        if case is None:
            self._hold_or_apply(recorded)
        return case

    def settle(self) -> None:
        """Apply the held writes to the data."""
        self.data.apply_all(r.event for r in self.held)
        self.held.clear()

    def _wanted(self, recorded: RecordedEvent, run: InvocationRecorded) -> bool:
        return (
            run.script_id == self.script_id
            and self.first <= recorded.position <= self.last
            and not run.trigger.startswith("throttled:")  # nothing ran
        )

    def _hold_or_apply(self, recorded: RecordedEvent) -> None:
        if type(recorded.event) in _WRITES and recorded.meta.correlation_id:
            if self.held and not _same_command(self.held[-1], recorded):
                self.settle()
            self.held.append(recorded)
            return
        self.settle()
        self.data.apply(recorded.event)


def _same_command(a: RecordedEvent, b: RecordedEvent) -> bool:
    """A command's events share their metadata and their transaction."""
    return a.txid == b.txid and a.meta.correlation_id == b.meta.correlation_id


class WhatIfRunner:
    """The what-ifs of one app; see the module docstring."""

    def __init__(
        self,
        app: AppInfo,
        *,
        store: AppStore,
        settings: Settings,
        executor: Executor | None,
        watchdog: Watchdog | None,
    ) -> None:
        self._app = app
        self._store = store
        self._settings = settings
        self._executor = executor
        self._watchdog = watchdog
        self._recording = Recording(settings)
        self._one_at_a_time = asyncio.Lock()
        self._tasks: set[asyncio.Task[Reply]] = set()

    def submit(
        self,
        command: WhatIf,
        timeout_s: float,
        current: AppState,
        settled: Callable[[], Awaitable[None]],
    ) -> asyncio.Future[Reply]:
        """Start ``command`` beside the actor's queue; ``current`` is the
        app's control state now (where the script must be an endpoint);
        ``settled`` returns once what the actor holds is in the log (the
        records of runs that answered already, which the range may take)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(
            timeout_s, self._settings.what_if_timeout_ms / 1000
        )
        task = loop.create_task(self._reply(command, deadline, current, settled))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Wait for the what-ifs under way (each is bounded by its deadline)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _reply(
        self,
        command: WhatIf,
        deadline: float,
        current: AppState,
        settled: Callable[[], Awaitable[None]],
    ) -> Reply:
        try:
            await settled()
            async with self._one_at_a_time:
                return Done(result=await self._answer(command, deadline, current))
        except PiCloudError as e:
            return failure_of(e)
        except Exception:  # a task root: its caller must get an answer
            log.exception("what-if of app %s failed", self._app.id)
            return failure_of(
                ActorUnavailable("the what-if failed; see the server log")
            )

    async def _answer(
        self, command: WhatIf, deadline: float, current: AppState
    ) -> WhatIfAnswer:
        saved = await self._new_version(command, current)
        await self._check_bound(command)
        invoker = Invoker(self._app, self._settings, executor=self._executor)
        if self._watchdog is not None:
            self._watchdog.watch(invoker.runtime)
        try:
            items = await self._runs(command, saved, invoker, deadline)
        finally:
            if self._watchdog is not None:
                self._watchdog.unwatch(invoker.runtime)
            invoker.close()
        return WhatIfAnswer(
            app_id=self._app.id,
            script_id=command.script_id,
            from_position=command.from_position,
            to_position=command.to_position,
            runs=sum(item.new is not None for item in items),
            changed=sum(item.changed for item in items),
            not_run=sum(item.new is None for item in items),
            items=items,
        )

    async def _new_version(self, command: WhatIf, current: AppState) -> ScriptSaved:
        """The script as saving ``source`` would make it (checked as a save is)."""
        script = current.scripts.get(command.script_id)
        if script is None:
            raise NotFound(f"no script {command.script_id[:80]!r} in this app")
        if script.kind == "module":
            raise InvalidInput(
                f"script {script.name!r} is a module: it runs only inside the scripts"
                " that require it; a what-if runs an endpoint script's invocations"
            )
        await prepare(command.source)  # parsed on a thread, as a save is
        [saved] = decide_save_script(
            current, SaveScript(script_id=script.id, source=command.source)
        )
        assert isinstance(saved, ScriptSaved)  # noqa: S101  # the decider's one event
        return saved

    async def _check_bound(self, command: WhatIf) -> None:
        if command.from_position > command.to_position:
            raise InvalidInput("from must not be after to")
        most = self._settings.what_if_max_invocations
        found = await self._store.count_runs(
            command.script_id,
            first=command.from_position,
            last=command.to_position,
            limit=most + 1,
        )
        if found > most:
            raise InvalidInput(
                f"the range holds more than {most} invocations of the script, the"
                " most one what-if runs (PICLOUD_WHAT_IF_MAX_INVOCATIONS); narrow"
                " from and to"
            )

    async def _runs(
        self, command: WhatIf, saved: ScriptSaved, invoker: Invoker, deadline: float
    ) -> list[WhatIfItem]:
        fold = _Fold(
            command.script_id,
            command.from_position,
            command.to_position,
            AppState(app_id=self._app.id),
        )
        items: list[WhatIfItem] = []
        stream, version = f"app-{self._app.id}", 0
        loop = asyncio.get_running_loop()
        while batch := await self._store.log.read_stream(stream, version, _READ_BATCH):
            for recorded in batch:
                if recorded.position > command.to_position:
                    return items
                case = fold.feed(recorded)
                if case is None:
                    continue
                if loop.time() > deadline:
                    raise CommandTimeout(
                        f"the what-if ran out of time after {len(items)} runs;"
                        " narrow from and to"
                    )
                items.append(await self._rerun(case, fold, saved, invoker))
                fold.settle()
            version = batch[-1].version
        return items

    async def _rerun(
        self, case: _Case, fold: _Fold, saved: ScriptSaved, invoker: Invoker
    ) -> WhatIfItem:
        run = case.run
        original = RunView(
            status=run.status,
            error=run.error,
            response=response_view(run.response),
            writes=_views(case.writes),
        )
        job, granted, note = _job(case)
        new = None
        if job is not None:
            new = await self._dry_run(
                job, granted, fold, evolve_app(fold.state, saved), invoker
            )
        return WhatIfItem(
            execution_id=run.execution_id,
            trigger=run.trigger,
            position=case.recorded.position,
            started_at=run.started_at,
            original=original,
            new=new,
            changed=new is not None and changed(original, new),
            note=note,
        )

    async def _dry_run(
        self,
        job: Job,
        granted: frozenset[Capability],
        fold: _Fold,
        state: AppState,
        invoker: Invoker,
    ) -> NewRun:
        """``job`` on ``invoker``'s runtime against the data as of ``fold``."""
        access = DataAccess(
            AsOfData(self._app.id, fold.data), granted=granted, settings=self._settings
        )
        again, reply = await invoker.run(state, job, access)
        staged = [
            i.event if isinstance(i, KvIntent) else i for i in access.staged.events
        ]
        return NewRun(
            status=again.status,
            error=again.error,
            response=response_view(self._recording.response(reply, always=True)),
            # a failed run writes nothing (SPEC.md §3: atomicity)
            writes=_views(staged) if again.status == "ok" else [],
            logs=again.logs,
        )


def _job(case: _Case) -> tuple[Job | None, frozenset[Capability], str | None]:
    """The run's input again: from its record (a sync route) or from the
    delivery it was an attempt of (a trigger, an async route)."""
    run = case.run
    if run.delivery_id is None:
        if run.request is None:
            return (
                None,
                SCRIPT_DEFAULT,
                (
                    "its request was not recorded (recorded before PiCloud kept"
                    " requests, with PICLOUD_RECORD_REQUESTS off, or a body over"
                    " PICLOUD_RECORD_BODY_MAX_BYTES)"
                ),
            )
        job = Job(
            script_id=run.script_id,
            execution_id=run.execution_id,
            trigger=run.trigger,
            request=run.request,
        )
        return job, SCRIPT_DEFAULT, None
    delivery = case.delivery
    if delivery is None:
        return None, SCRIPT_DEFAULT, "its delivery is not in the log before it"
    job = Job(
        script_id=run.script_id,
        execution_id=run.execution_id,
        trigger=run.trigger,
        request=delivery.request,
        event=None
        if delivery.source == "route"
        else msgspec.json.decode(delivery.event),
        depth=delivery.depth,
    )
    return job, policy.granted(delivery), None


def _views(events: list[Event]) -> list[dict[str, object]]:
    return [view for event in events if (view := write_view(event)) is not None]
