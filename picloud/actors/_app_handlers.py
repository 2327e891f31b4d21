"""The commands of an app's actor that run scripts or touch its data.

Each handler returns the :class:`Outcome` of one command: the events to append
(the invocation's writes only if it succeeded) and the reply to send once
they are durable. The actor runs them one at a time (see app_actor).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from picloud.actors._app_data import AppData, KvIntent, Staged
from picloud.actors._cpu_budget import CpuBudget
from picloud.actors._fetch import FetchLimits
from picloud.actors._outbound import FetchJournal, FetchRun
from picloud.actors._outcome import Outcome, ReplyFn, accepted, done, not_found, result
from picloud.actors.invoker import Invoker, Job
from picloud.actors.protocol import Reply, failure_of
from picloud.actors.sdk import DataAccess
from picloud.config import Settings
from picloud.domain import app as app_decide
from picloud.domain import delivery_policy as policy
from picloud.domain.access import SCRIPT_DEFAULT, Capability, script_capabilities
from picloud.domain.app_settings import (
    decide_settings,
    parse_host_list,
    settings_record,
)
from picloud.domain.commands import (
    AddRoute,
    AddTrigger,
    Command,
    DataOp,
    Deactivate,
    DeleteScript,
    Deliver,
    Deploy,
    Expire,
    Invoke,
    MarkAbandoned,
    RecordHostKill,
    RemoveRoute,
    RemoveTrigger,
    ReplayDeadLetter,
    ResolveDeadLetter,
    SaveScript,
    SetCors,
    SetFetchHosts,
    Settle,
    Wake,
)
from picloud.domain.dead_letters import replay_events, resolve_events
from picloud.domain.deploy import decide_deploy
from picloud.domain.redaction import credential_names, stored_request
from picloud.domain.triggers import trigger_record
from picloud.errors import (
    CommandTimeout,
    InvalidInput,
    NotFound,
    SdkCallError,
    TooManyRequests,
)
from picloud.events import Event, EventMeta, RecordedEvent, utcnow
from picloud.events.app import (
    AbandonedExecutionExpired,
    InvocationAccepted,
    InvocationRecorded,
    KvExpired,
)
from picloud.events.app_state import AppState, RouteInfo
from picloud.events.pending import Deliveries, Delivery
from picloud.events.triggers import (
    DeadLettered,
    DeadLetterExpired,
    DeliverySkipped,
    RetryScheduled,
)
from picloud.metrics import DEAD_LETTERS, EXECUTIONS, RETRIES, TRIGGER_LAG
from picloud.scripting import AppInfo

__all__ = ["AppContext"]

log = logging.getLogger(__name__)

_EXPIRE_BATCH = 500

_DATA_ADMIN = frozenset(
    {
        Capability.KV_READ,
        Capability.KV_WRITE,
        Capability.DOCS_READ,
        Capability.DOCS_WRITE,
    }
)


@dataclass
class AppContext:
    """What the handlers share with their actor."""

    app: AppInfo
    settings: Settings
    invoker: Invoker
    data: AppData
    budget: CpuBudget
    state: Callable[[], AppState]
    """The actor's state as it is now (speculative writes included)."""

    @functools.cached_property
    def secret_headers(self) -> frozenset[str]:
        return credential_names(self.settings.redact_headers)

    async def decide(
        self,
        command: Command,
        deadline: float,
        *,
        state: AppState,
        deliveries: Deliveries,
    ) -> Outcome | None:
        """The outcome of ``command`` against ``state`` (None: nothing to
        record, the reply is ``Done()``). Wake is the actor's own."""
        if isinstance(command, Invoke):  # the hot path first, with its own meta
            meta = EventMeta(
                actor=command.actor,
                idempotency_key=command.idempotency_key,
                correlation_id=command.correlation_id or command.execution_id,
            )
            return await self.invoke(state, command, deadline, meta)
        meta = EventMeta(actor=command.actor, idempotency_key=command.idempotency_key)
        match command:
            case Deliver():
                pending = deliveries.get(command.delivery_id)
                return None if pending is None else await self.deliver(state, pending)
            case DataOp() | ReplayDeadLetter() | ResolveDeadLetter() | Expire():
                return await self.data_command(command, meta)
            case MarkAbandoned():
                events = self.invoker.abandoned(command.execution_id)
                return Outcome(events, meta, done)
            case Deactivate() | Settle() | Wake():
                return None
            case SaveScript() | AddRoute() | AddTrigger():
                events = app_decide.decide_admin(state, command, self.settings)
                return Outcome(events, meta, self._entity_reply(events))
            case DeleteScript() | RemoveRoute() | RemoveTrigger() | RecordHostKill():
                events = app_decide.decide_admin(state, command, self.settings)
                return Outcome(events, meta, done)
            case SetCors() | SetFetchHosts():
                events = decide_settings(state, command)
                return Outcome(events, meta, self._settings_reply)
            case Deploy():
                events, changes = decide_deploy(state, command.desired, self.settings)
                kept = [] if command.dry_run else events
                return Outcome(kept, meta, result(changes))
        raise InvalidInput(f"unknown command {type(command).__name__}")

    def _settings_reply(self, recorded: list[RecordedEvent]) -> Reply:
        """The app's settings as they are once the change is durable."""
        return done(recorded, settings_record(self.state(), self.default_fetch_hosts))

    def _entity_reply(self, events: list[Event]) -> ReplyFn:
        """Reply with the script, route or trigger the events made, as it is
        once they are durable (``self.state()``: the actor's state then)."""
        event = events[-1]

        def reply(recorded: list[RecordedEvent]) -> Reply:
            state = self.state()
            found: Any = None
            script_id = getattr(event, "script_id", None)
            route_id = getattr(event, "route_id", None)
            trigger_id = getattr(event, "trigger_id", None)
            if trigger_id is not None and trigger_id in state.triggers:
                found = trigger_record(state, state.triggers[trigger_id], event.at)
            elif route_id is not None and route_id in state.routes:
                found = app_decide.route_record(state, state.routes[route_id])
            elif script_id is not None and script_id in state.scripts:
                found = app_decide.script_record(state, state.scripts[script_id])
            return done(recorded, found)

        return reply

    @functools.cached_property
    def fetch_limits(self) -> FetchLimits:
        return FetchLimits.from_settings(self.settings)

    @functools.cached_property
    def default_fetch_hosts(self) -> tuple[str, ...]:
        return parse_host_list(self.settings.fetch_allowed_hosts)

    def access(
        self,
        granted: frozenset[Capability] = SCRIPT_DEFAULT,
        *,
        state: AppState | None = None,
        journal: str | None = None,
    ) -> DataAccess:
        """A run's SDK; with ``state``, its ``http.fetch`` too (journaled
        under ``journal`` when the run is a delivery's attempt)."""
        outbound = None
        if state is not None:
            hosts = state.fetch_hosts
            outbound = FetchRun(
                limits=self.fetch_limits,
                allowed=self.default_fetch_hosts if hosts is None else hosts,
                journal=None
                if journal is None
                else FetchJournal(self.data.store, journal),
            )
        return DataAccess(
            self.data, granted=granted, settings=self.settings, outbound=outbound
        )

    async def invoke(
        self, state: AppState, command: Invoke, deadline: float, meta: EventMeta
    ) -> Outcome:
        """An HTTP request to a route: run it now (sync) or accept it (async)."""
        route = state.routes.get(command.route_id)
        if route is None:
            return Outcome([], meta, not_found("the route no longer exists"))
        if asyncio.get_running_loop().time() > deadline:
            events = self.invoker.abandoned(command.execution_id)
            return Outcome(
                events, meta, failure_of(CommandTimeout("the caller gave up"))
            )
        wait = self.budget.wait_s()
        if wait > 0:
            return self._throttled(route, command, meta, wait)
        if route.dispatch_mode == "async":
            event = InvocationAccepted(
                at=utcnow(),
                app_id=self.app.id,
                execution_id=command.execution_id,
                route_id=route.id,
                script_id=route.script_id,
                # Stored (and kept by a dead letter): no credentials, no NUL.
                request=stored_request(command.request, self.secret_headers),
                request_id=command.correlation_id,
            )
            return Outcome([event], meta, accepted(command.execution_id))
        access = self.access(script_capabilities(route.capabilities), state=state)
        recorded, reply = await self.invoker.run_route(state, route, command, access)
        self.budget.charge(recorded.cpu_ms)
        return self._with_writes(recorded, access, meta, reply)

    def _throttled(
        self, route: RouteInfo, command: Invoke, meta: EventMeta, wait: float
    ) -> Outcome:
        """Refuse the request (429); the first refusal of an episode is in the
        execution log, so the owner sees why (one record, not one per request)."""
        error = TooManyRequests(
            f"app {self.app.slug!r} is over its CPU budget "
            f"({self.settings.app_cpu_budget_ms_per_s} ms per second, bursts of "
            f"{self.settings.app_cpu_burst_ms} ms): its scripts used "
            f"{self.budget.used_ms:.0f} ms; retry in {wait:.1f}s",
            retry_after=wait,
        )
        EXECUTIONS.labels("throttled").inc()
        if self.budget.throttling:
            return Outcome([], meta, failure_of(error))
        self.budget.throttling = True
        now = utcnow()
        recorded = InvocationRecorded(
            at=now,
            app_id=self.app.id,
            execution_id=command.execution_id,
            script_id=route.script_id,
            trigger=f"throttled:{route.method} {route.path}",
            status="error",
            started_at=now,
            duration_ms=0.0,
            error=error.message,
            request_id=command.correlation_id,
        )
        return Outcome([recorded], meta, failure_of(error))

    async def deliver(self, state: AppState, delivery: Delivery) -> Outcome:
        """One attempt of a pending delivery: its run, then success, retry,
        dead letter or (for a dead-letter handler) the recursion stop."""
        meta = EventMeta(trigger_depth=delivery.depth, correlation_id=delivery.id)
        reason = policy.skip_reason(delivery, state, self.settings)
        if reason is not None:
            log.warning(
                "delivery %s of app %s skipped: %s", delivery.id, self.app.id, reason
            )
            skipped = DeliverySkipped(
                at=utcnow(),
                app_id=self.app.id,
                delivery_id=delivery.id,
                reason=reason,
                script_id=delivery.script_id,
                trigger=policy.trigger_label(delivery, state),
            )
            return Outcome([skipped], meta, done)
        due = delivery.due_at or delivery.first_attempt_at
        TRIGGER_LAG.observe(max(0.0, (utcnow() - due).total_seconds()))
        job = Job(
            script_id=delivery.script_id,
            execution_id=policy.run_execution_id(delivery),
            trigger=policy.trigger_label(delivery, state),
            request=delivery.request,
            event=None
            if delivery.source == "route"
            else msgspec.json.decode(delivery.event),
            depth=delivery.depth,
            attempt=delivery.attempt,
            request_id=delivery.request_id,
        )
        access = self.access(
            policy.granted(delivery, state),
            state=state,
            journal=f"{delivery.id}#{delivery.attempt}",
        )
        recorded, _ = await self.invoker.run(state, job, access)
        self.budget.charge(recorded.cpu_ms)
        recorded = msgspec.structs.replace(
            recorded, delivery_id=delivery.id, attempt=delivery.attempt
        )
        if recorded.status == "ok":
            return self._with_writes(recorded, access, meta, done)
        failure = policy.failure_events(
            delivery,
            recorded.error or "failed",
            app_id=self.app.id,
            settings=self.settings,
            now=utcnow(),
            policy=policy.retry_of(delivery, state),
        )
        _count_failure(failure)
        return Outcome([recorded, *failure], meta, done)

    async def data_command(
        self,
        command: DataOp | ReplayDeadLetter | ResolveDeadLetter | Expire,
        meta: EventMeta,
    ) -> Outcome:
        """An admin's or a sweep's change to the app's data or dead letters."""
        match command:
            case DataOp():
                return await self.data_op(command, meta)
            case ReplayDeadLetter() | ResolveDeadLetter():
                return await self.dead_letter(command, meta)
            case Expire():
                return await self.expire(command, meta)

    async def data_op(self, command: DataOp, meta: EventMeta) -> Outcome:
        """An admin's KV or document operation, through the SDK's own code."""
        access = self.access(_DATA_ADMIN)
        try:
            value = await access(command.op, command.args)
        except SdkCallError as e:
            raise InvalidInput(e.message) from None
        events = access.staged.events
        return Outcome(
            events, meta, result(value), staged=access.staged if events else None
        )

    async def dead_letter(
        self, command: ReplayDeadLetter | ResolveDeadLetter, meta: EventMeta
    ) -> Outcome:
        letter = await self.data.store.dead_letter(command.dead_letter_id)
        if letter is None:
            raise NotFound(
                f"no dead letter {command.dead_letter_id[:80]!r} in this app"
            )
        if isinstance(command, ReplayDeadLetter):
            events = replay_events(letter, command.actor)
        else:
            events = resolve_events(letter, command.actor)
        return Outcome(events, meta, done)

    async def expire(self, command: Expire, meta: EventMeta) -> Outcome:
        """The retention sweep's deletions, as events; ids already gone are skipped,
        so sweeps running at once on several servers record each one once."""
        now = utcnow()
        letters, executions = await self.data.store.still_present(
            dead_letters=command.dead_letters,
            abandoned=command.abandoned,
        )
        events: list[Event] = [
            DeadLetterExpired(at=now, app_id=self.app.id, dead_letter_id=letter_id)
            for letter_id in letters
        ]
        events += [
            AbandonedExecutionExpired(at=now, app_id=self.app.id, execution_id=e)
            for e in executions
        ]
        return Outcome(events, meta, done)

    async def expire_keys(self, meta: EventMeta) -> tuple[Outcome, datetime | None]:
        """The KV entries past their TTL, recorded as expired (a batch at a
        time), and when the next one runs out. A key with a write waiting
        for its append is left to that write; the expiries decided here are
        staged, so the next sweep does not decide them again before they are
        durable."""
        now = utcnow()
        rows = await self.data.store.expired_kv(now, _EXPIRE_BATCH)
        staged = Staged()
        for collection, key, value, expires in rows:
            if self.data.kv_pending((collection, key)):
                continue
            staged.events.append(
                KvExpired(
                    at=now,
                    app_id=self.app.id,
                    collection=collection,
                    key=key,
                    prev=msgspec.Raw(value),
                    expires_at=expires,
                )
            )
            staged.kv[collection, key] = None
        following = (
            now
            if len(rows) == _EXPIRE_BATCH
            else await self.data.store.next_kv_expiry(after=now)
        )
        outcome = Outcome(
            staged.events, meta, done, staged=staged if staged.events else None
        )
        return outcome, following

    def _with_writes(
        self,
        recorded: InvocationRecorded,
        access: DataAccess,
        meta: EventMeta,
        reply: Reply | ReplyFn,
    ) -> Outcome:
        """The invocation's outcome: its writes only if it succeeded (atomicity)."""
        if recorded.status != "ok" or not access.staged.events:
            return Outcome([recorded], meta, reply)
        events: list[Event | KvIntent] = [*access.staged.events, recorded]
        return Outcome(events, meta, reply, staged=access.staged)


def _count_failure(events: list[Event]) -> None:
    """A failed attempt's fate in the metrics (counted when decided: a batch
    whose append fails is decided again, and counted again)."""
    for event in events:
        if isinstance(event, RetryScheduled):
            RETRIES.inc()
        elif isinstance(event, DeadLettered):
            DEAD_LETTERS.inc()
