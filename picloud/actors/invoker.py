"""Running one app's scripts: its Lua runtime, compiled-code cache and SDK.

The invoker turns an invocation into the event that records it
(``InvocationRecorded``) and, for a sync route, the HTTP reply. Script errors
never reach the caller: they answer 500 with the execution id; the detail is
in the execution log.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import UTC, datetime

import msgspec

from picloud.actors.protocol import HttpReply, Invoke
from picloud.errors import ScriptError, SdkCallError
from picloud.events import Event, utcnow
from picloud.events.app import (
    ExecutionAbandoned,
    InvocationAccepted,
    InvocationRecorded,
    LogEntry,
    RequestRecord,
)
from picloud.events.app_state import AppState, RouteInfo, ScriptInfo
from picloud.scripting import (
    AppInfo,
    AppRuntime,
    CompiledScript,
    InvocationContext,
    JSONValue,
    LogLine,
    RequestData,
    ScriptLimits,
    logs_of,
)

__all__ = ["Invoker"]

_JSON = {"Content-Type": "application/json"}
_encode = msgspec.json.encode


class _NoStores:
    """The SDK before the stores exist: every I/O call fails with a clear message."""

    async def __call__(self, op: str, args: list[JSONValue]) -> JSONValue:
        raise SdkCallError(f"{op} is not available in this version of PiCloud")


class Invoker:
    """Owns the app's :class:`AppRuntime`; one per active app."""

    def __init__(self, app: AppInfo, limits: ScriptLimits, *, cache_size: int) -> None:
        self.app = app
        self.runtime = AppRuntime(app.id, limits)
        self._cache_size = cache_size
        self._compiled: OrderedDict[str, tuple[int, CompiledScript]] = OrderedDict()
        self._sdk = _NoStores()

    def close(self) -> None:
        self._compiled.clear()
        self.runtime.close()

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
        self, state: AppState, route: RouteInfo, command: Invoke
    ) -> tuple[InvocationRecorded, HttpReply]:
        """Run a sync route's script; the event to record and the caller's reply."""
        trigger = f"route:{route.method} {route.path}"
        recorded, response = await self._run(
            state, route.script_id, command.execution_id, trigger, command.request
        )
        if response is None:
            return recorded, _script_failed(command.execution_id)
        return recorded, response

    async def run_accepted(
        self, state: AppState, accepted: InvocationAccepted
    ) -> InvocationRecorded:
        route = state.routes.get(accepted.route_id)
        trigger = f"async:{route.method} {route.path}" if route else "async:(removed)"
        recorded, _ = await self._run(
            state, accepted.script_id, accepted.execution_id, trigger, accepted.request
        )
        return recorded

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

    async def _run(
        self,
        state: AppState,
        script_id: str,
        execution_id: str,
        trigger: str,
        request: RequestRecord | None,
    ) -> tuple[InvocationRecorded, HttpReply | None]:
        started_at, started = utcnow(), time.perf_counter()
        script = state.scripts.get(script_id)
        response: HttpReply | None = None
        error: str | None = "the script no longer exists"
        logs: list[LogLine] = []
        if script is not None:
            ctx = InvocationContext(
                invocation_id=execution_id, app=self.app, request=_request_data(request)
            )
            try:
                result = await self.runtime.invoke(
                    self.compiled(script), ctx, self._sdk
                )
            except ScriptError as e:
                error, logs = e.message, logs_of(e)
            else:
                error, logs = None, result.logs
                r = result.response
                response = HttpReply(status=r.status, headers=r.headers, body=r.body)
        recorded = InvocationRecorded(
            at=utcnow(),
            app_id=self.app.id,
            execution_id=execution_id,
            script_id=script_id,
            trigger=trigger,
            status="ok" if error is None else "error",
            started_at=started_at,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            error=error,
            logs=[_log_entry(line) for line in logs],
        )
        return recorded, response


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


def _log_entry(line: LogLine) -> LogEntry:
    return LogEntry(
        level=line.level,
        time=datetime.fromtimestamp(line.time, UTC),
        message=line.message,
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
