"""Running one app's scripts: its Lua runtime, compiled-code cache and SDK.

The invoker turns an invocation into the event that records it
(``InvocationRecorded``) and, for a sync route, the HTTP reply. Script errors
never reach the caller: they answer 500 with the execution id; the detail is
in the execution log.

Where scripts run (fair CPU): with an executor (in a host), a script first
runs on the event loop within a short slice — most scripts end well within
it and pay no hand-off to a thread. One that outruns it is stopped before
any effect left the sandbox and run again from the start on a worker thread,
and the app is *hot* for a while: its next runs go straight to a thread. A
CPU-bound script therefore holds one worker thread, never the loop that
serves the other apps of its host.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from picloud.actors.protocol import HttpReply
from picloud.actors.sdk import DataAccess
from picloud.config import Settings
from picloud.domain.commands import Invoke
from picloud.domain.redaction import (
    REDACTED,
    credential_names,
    scrub_secrets,
    stored_request,
)
from picloud.domain.sdk_ops import SDK
from picloud.domain.values import without_nul
from picloud.errors import ScriptError, ScriptPreempted
from picloud.events import Event, utcnow
from picloud.events.app import (
    ExecutionAbandoned,
    InvocationRecorded,
    LogEntry,
    RequestRecord,
    ResponseRecord,
)
from picloud.events.app_state import AppState, RouteInfo, ScriptInfo
from picloud.metrics import EXECUTIONS
from picloud.scripting import (
    AppInfo,
    AppRuntime,
    CompiledScript,
    InvocationContext,
    InvocationResult,
    LogLine,
    Mode,
    ModuleSpec,
    RequestData,
    ScriptLimits,
    cpu_ms_of,
    logs_of,
)
from picloud.scripting.modules import prepare

__all__ = ["AppModules", "Invoker", "Job", "Recording", "response_record"]


@dataclass(frozen=True, slots=True)
class Job:
    """One run of a script: why (``trigger``), with what request or event."""

    script_id: str
    execution_id: str
    trigger: str
    request: RequestRecord | None = None
    event: dict[str, Any] | None = None
    depth: int = 0
    attempt: int = 1
    """Of a delivery (1-based); ``ctx.attempt``."""
    record: RequestRecord | None = None
    """The request as its record keeps it (redacted), if it is kept."""
    request_id: str | None = None
    """The HTTP request's ``X-Request-Id`` (a sync route's run)."""


_JSON = {"Content-Type": "application/json"}
_encode = msgspec.json.encode
_CHECKED_MAX = 4096
_HOT_S = 30.0
"""How long an app whose script outran its slice runs on worker threads."""
# The runs' counter per status, labelled once: labels() costs ~2 µs a call.
_RUNS_COUNTED = {status: EXECUTIONS.labels(status) for status in ("ok", "error")}


class AppModules:
    """``require`` of one app: its own module scripts in the given control
    state, and nothing else (another app's modules do not exist for it).
    ``generation`` changes whenever the app's scripts do (Invoker)."""

    __slots__ = ("_state", "generation")

    def __init__(self, state: AppState, generation: int | None = None) -> None:
        self._state = state
        self.generation = generation

    def lookup(self, name: str) -> ModuleSpec | None:
        script = self._state.script_named(name)
        if script is None or script.kind != "module":
            return None
        return ModuleSpec(
            name=script.name, version=script.version, source=script.source, id=script.id
        )


class Invoker:
    """Owns the app's :class:`AppRuntime`; one per active app."""

    def __init__(
        self, app: AppInfo, settings: Settings, *, executor: Executor | None = None
    ) -> None:
        """Limits and cache sizes come from ``settings``. Without an
        ``executor`` every script runs on the event loop (tests, benches in one
        process)."""
        self.app = app
        self.runtime = AppRuntime(
            app.id,
            ScriptLimits.from_settings(settings),
            module_cache_size=settings.module_cache_size,
            sdk=SDK,
            executor=executor,
        )
        self._slice_s = settings.script_inline_slice_ms / 1000
        self._hot_until = 0.0
        self._preempted_ms = 0.0
        self._cache_size = settings.script_cache_size
        self._compiled: OrderedDict[str, tuple[int, CompiledScript]] = OrderedDict()
        self._checked: set[tuple[str, int]] = set()
        self._checked_at: dict[str, int] = {}  # script id -> generation checked
        self._scripts: object = None
        self._generation = 0
        self._recording = Recording(settings)

    def close(self) -> None:
        self._compiled.clear()
        self.runtime.close()

    async def check_modules(self, state: AppState, script: ScriptInfo) -> None:
        """Shape-check, in a thread, the modules ``script`` imports (directly
        or through other modules) whose source this process has never seen
        (they came through the log only), so that loading them does not parse
        on the event loop. Loading checks again in any case (runtime). Once
        per script and generation of the app's scripts."""
        self.modules(state)  # brings the generation up to date
        generation = self._generation
        if self._checked_at.get(script.id) == generation:
            return
        if len(self._checked_at) >= _CHECKED_MAX:
            self._checked_at.clear()
        self._checked_at[script.id] = generation
        sources: list[str] = []
        names, seen = list(script.imports), set()
        while names:
            name = names.pop()
            module = state.script_named(name)
            if name in seen or module is None or module.kind != "module":
                continue
            seen.add(name)
            names.extend(module.imports)
            key = (module.id, module.version)
            if key not in self._checked:
                if len(self._checked) >= _CHECKED_MAX:
                    self._checked.clear()
                self._checked.add(key)
                sources.append(module.source)
        for source in sources:
            await prepare(source)

    def modules(self, state: AppState) -> AppModules:
        """The modules of ``state``, with a generation that changes with its
        scripts (a new map: every evolve that touches a script makes one; the
        old map is held here, so its identity is never reused meanwhile)."""
        if state.scripts is not self._scripts:
            self._scripts = state.scripts
            self._generation += 1
        return AppModules(state, self._generation)

    def compiled(self, script: ScriptInfo) -> CompiledScript:
        """The script compiled at its current version (LRU, by version)."""
        hit = self._compiled.get(script.id)
        if hit is not None and hit[0] == script.version:
            self._compiled.move_to_end(script.id)
            return hit[1]
        compiled = self.runtime.compile(script.name, script.source)
        self._compiled[script.id] = (script.version, compiled)
        if len(self._compiled) > self._cache_size:
            self._compiled.popitem(last=False)
        return compiled

    async def run_route(
        self, state: AppState, route: RouteInfo, command: Invoke, sdk: DataAccess
    ) -> tuple[InvocationRecorded, HttpReply]:
        """Run a sync route's script; the event to record and the caller's reply."""
        job = Job(
            script_id=route.script_id,
            execution_id=command.execution_id,
            trigger=f"route:{route.method} {route.path}",
            request=command.request,
            record=self._recording.request(command.request),
            request_id=command.correlation_id,
        )
        recorded, response = await self.run(state, job, sdk)
        if response is None:
            return recorded, _script_failed(command.execution_id)
        return recorded, response

    def abandoned(
        self, execution_id: str, reason: str = "the caller gave up"
    ) -> list[Event]:
        return [
            ExecutionAbandoned(
                at=utcnow(),
                app_id=self.app.id,
                execution_id=execution_id,
                reason=reason,
            )
        ]

    async def run(
        self, state: AppState, job: Job, sdk: DataAccess
    ) -> tuple[InvocationRecorded, HttpReply | None]:
        """Run ``job``; the event recording it, and the HTTP answer if it succeeded."""
        started_at, started = utcnow(), time.perf_counter()
        script = state.scripts.get(job.script_id)
        response: HttpReply | None = None
        error: str | None = "the script no longer exists"
        logs: list[LogLine] = []
        cpu_ms = 0.0
        if script is not None:
            try:
                await self.check_modules(state, script)
                result = await self._invoke(state, script, job, sdk)
            except ScriptError as e:
                error, logs, cpu_ms = e.message, logs_of(e), cpu_ms_of(e)
            else:
                error, logs, cpu_ms = None, result.logs, result.cpu_ms
                r = result.response
                response = HttpReply(status=r.status, headers=r.headers, body=r.body)
        secrets = sdk.revealed
        recorded = InvocationRecorded(
            at=utcnow(),
            app_id=self.app.id,
            execution_id=job.execution_id,
            script_id=job.script_id,
            trigger=job.trigger,
            status="ok" if error is None else "error",
            started_at=started_at,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            error=None if error is None else without_nul(scrub_secrets(error, secrets)),
            logs=[_log_entry(line, secrets) for line in logs],
            cpu_ms=round(cpu_ms + self._preempted_ms, 3),
            fetches=sdk.fetches,
            request=job.record,
            response=self._recording.response(response),
            request_id=job.request_id,
        )
        self._preempted_ms = 0.0
        _RUNS_COUNTED[recorded.status].inc()
        return recorded, response

    async def _invoke(
        self, state: AppState, script: ScriptInfo, job: Job, sdk: DataAccess
    ) -> InvocationResult:
        """The run on the loop within a slice, or on a worker thread (module
        docstring); a preempted run is started again with fresh writes."""
        compiled, ctx, modules = (
            self.compiled(script),
            self._context(job),
            self.modules(state),
        )
        if self.runtime.executor is None:
            return await self.runtime.invoke(compiled, ctx, sdk, modules)
        if time.monotonic() >= self._hot_until:
            try:
                return await self.runtime.invoke(
                    compiled, ctx, sdk, modules, mode=Mode.SLICED, slice_s=self._slice_s
                )
            except ScriptPreempted as e:
                self._preempted_ms = cpu_ms_of(e)
                sdk.forget()
        self._hot_until = time.monotonic() + _HOT_S
        return await self.runtime.invoke(compiled, ctx, sdk, modules, mode=Mode.THREAD)

    def _context(self, job: Job) -> InvocationContext:
        return InvocationContext(
            execution_id=job.execution_id,
            app=self.app,
            request=_request_data(job.request),
            event=job.event,
            trigger_depth=job.depth,
            attempt=job.attempt,
        )


class Recording:
    """What a run's record keeps of its request and response (for what-if):
    the request redacted as a stored one is (domain.redaction), response
    headers with cookies redacted too, bodies within ``record_body_max_bytes``
    (a larger request is not kept; a larger response keeps its digest)."""

    __slots__ = ("_max", "_on", "_request_secrets", "_response_secrets")

    def __init__(self, settings: Settings) -> None:
        self._on = settings.record_requests
        self._max = settings.record_body_max_bytes
        self._request_secrets = credential_names(settings.redact_headers)
        # A response's cookies are the app's secrets as a request's are the caller's.
        self._response_secrets = self._request_secrets | {"set-cookie"}

    def request(self, request: RequestRecord) -> RequestRecord | None:
        if not self._on or len(request.body) > self._max:
            return None
        return stored_request(request, self._request_secrets)

    def response(
        self, reply: HttpReply | None, *, always: bool = False
    ) -> ResponseRecord | None:
        """``reply`` as the record keeps it; ``always``, even with recording
        off (a what-if shows the new run's answer whatever the setting)."""
        if reply is None or not (self._on or always):
            return None
        return response_record(reply, self._max, self._response_secrets)


def response_record(
    reply: HttpReply, max_bytes: int, secrets: frozenset[str]
) -> ResponseRecord:
    """``reply`` as a record keeps it: the headers named in ``secrets``
    (lower-case) redacted, the body if within ``max_bytes``, else its size
    and SHA-256."""
    headers = reply.headers
    if not secrets.isdisjoint(k.lower() for k in headers):
        headers = {
            k: REDACTED if k.lower() in secrets else v for k, v in headers.items()
        }
    body = reply.body
    if len(body) <= max_bytes:
        return ResponseRecord(
            status=reply.status, headers=headers, body=body, size=len(body)
        )
    return ResponseRecord(
        status=reply.status,
        headers=headers,
        size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
    )


def _request_data(request: RequestRecord | None) -> RequestData | None:
    if request is None:
        return None
    return RequestData(
        method=request.method,
        path=request.path,
        params=request.params,
        query=request.query,
        headers=request.headers,
        body=request.body,
    )


def _log_entry(line: LogLine, secrets: dict[str, str]) -> LogEntry:
    return LogEntry(
        level=line.level,
        time=datetime.fromtimestamp(line.time, UTC),
        message=without_nul(
            scrub_secrets(line.message, secrets) if secrets else line.message
        ),
    )


def _script_failed(execution_id: str) -> HttpReply:
    body = {
        "error": {
            "code": "script_error",
            "message": f"the script failed; see execution {execution_id} in the"
            " execution log",
            "execution_id": execution_id,
        }
    }
    return HttpReply(status=500, headers=_JSON, body=_encode(body))
