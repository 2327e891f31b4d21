"""The async driver of one invocation.

The script runs in a Lua coroutine. When it calls an I/O SDK function the
coroutine yields an SDK request (see :func:`_serve`); the driver awaits the
host's :class:`~picloud.scripting.SdkHandler` on the event loop and resumes
the coroutine with the answer. A yield that is not an SDK request ends the
invocation with an error (core.lua). The whole invocation, awaits included,
is bounded by ``limits.timeout_ms``.

Where the Lua steps run (:class:`Mode`): on the event loop's own thread
(cheapest: no hand-off), on it with a *slice* of its own CPU time after
which the invocation is stopped (:class:`~picloud.errors.ScriptPreempted`,
for the host to run it again elsewhere), or on a worker thread of the
runtime's executor, where a CPU-bound script cannot stall the loop (lupa
releases the GIL while Lua runs). A step on a worker thread is always
waited for before anything else touches the runtime, even when the
invocation is cancelled meanwhile.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import re
import time
from typing import TYPE_CHECKING, Any

import msgspec

from picloud.errors import (
    ScriptError,
    ScriptLimitExceeded,
    ScriptPreempted,
    ScriptRuntimeError,
    ScriptTimeout,
    SdkCallError,
)
from picloud.event_loop import deadlines

from ._convert import ValueLimitHit, response_from, shape_value
from ._lua import LuaError, LuaMemoryError
from .context import AppInfo, CurrentInvocation, InvocationResult, LogLine

if TYPE_CHECKING:
    from .context import InvocationContext, ModuleSource, SdkHandler
    from .runtime import AppRuntime, CompiledScript

__all__ = ["Invocation", "Mode", "cpu_ms_of", "logs_of", "run"]

_log = logging.getLogger(__name__)
MAX_MESSAGE = 2000
_POSITIONED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*:\d+: ")
_decode_args = msgspec.json.Decoder(list[Any]).decode
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
SDK_WRAPPING = 3
"""Levels an SDK answer adds around a stored value (``page.items[i].data``):
a value the store accepted is readable however the SDK hands it over."""
SDK_REQUEST, DONE, FAILED, LIMIT = 1, 2, 3, 4
"""What a step of Lua returns first (core.lua, after_resume)."""


class Mode(enum.Enum):
    """Where an invocation's Lua steps run (module docstring)."""

    INLINE = "inline"
    SLICED = "sliced"
    THREAD = "thread"


class Invocation:
    """The Python side of one running invocation."""

    __slots__ = (
        "cpu_s",
        "current",
        "deadline",
        "handle",
        "logs",
        "modules",
        "script",
        "sliced",
        "step_cpu",
        "stopping",
        "threaded",
    )

    def __init__(
        self,
        script: CompiledScript,
        current: CurrentInvocation,
        deadline: float,
        modules: ModuleSource | None,
    ) -> None:
        self.script = script
        self.current = current
        self.deadline = deadline
        self.modules = modules
        self.logs: list[LogLine] = []
        self.handle: Any = None
        self.threaded = False
        self.sliced = False
        self.cpu_s = 0.0
        """CPU time of the steps that ended; the running one adds from step_cpu."""
        self.step_cpu = 0.0
        self.stopping = False
        """Set from the loop to end a step running on a worker thread: the hook
        then sees its deadline passed (see AppRuntime.clock)."""

    def cpu_now(self) -> float:
        """CPU seconds so far, the running step included (on its own thread)."""
        return self.cpu_s + (time.thread_time() - self.step_cpu)


class _Stop(Exception):
    def __init__(self, limit: str) -> None:
        super().__init__(limit)
        self.limit = limit


def logs_of(error: BaseException) -> list[LogLine]:
    """The log lines a failed invocation wrote before ``error`` (else empty)."""
    logs: list[LogLine] = getattr(error, "logs", [])
    return logs


async def run(  # noqa: PLR0913  # the invocation and where it runs
    rt: AppRuntime,
    script: CompiledScript,
    ctx: InvocationContext,
    sdk: SdkHandler,
    modules: ModuleSource | None,
    *,
    mode: Mode = Mode.INLINE,
    slice_s: float = 0.0,
) -> InvocationResult:
    limits = rt.limits
    started = time.perf_counter()
    now = time.monotonic()
    current = CurrentInvocation(
        app_id=rt.app_id,
        execution_id=ctx.execution_id,
        hard_deadline=now + (limits.timeout_ms + limits.hard_deadline_grace_ms) / 1000,
    )
    inv = Invocation(script, current, now + limits.timeout_ms / 1000, modules)
    inv.threaded = mode is Mode.THREAD
    inv.sliced = mode is Mode.SLICED
    cpu_slice = slice_s if mode is Mode.SLICED else False
    try:
        status = await _start(rt, inv, ctx, cpu_slice)
        if status[0] == SDK_REQUEST:
            status = await _serve(rt, inv, sdk, status)
    except _Stop as stop:
        where = _abort(rt, inv, stop.limit)
        raise _limit(inv, stop.limit, where) from None
    except BaseException:
        _abort(rt, inv, "aborted")
        raise
    return _conclude(inv, status, started)


async def _start(
    rt: AppRuntime, inv: Invocation, ctx: InvocationContext, cpu_slice: float | bool
) -> tuple[Any, ...]:
    limits = rt.limits
    rt.begin()
    args, lua_bytes = _ctx_args(ctx)
    event_shape = event_vals = None
    if ctx.event is not None:
        try:
            shaped = shape_value(
                ctx.event,
                max_bytes=limits.max_value_bytes,
                max_depth=limits.max_value_depth,
            )
        except ValueLimitHit as e:
            raise _Stop(e.limit) from None
        event_shape, lua_bytes = shaped.shape, lua_bytes + shaped.lua_bytes
    if not rt.fits(lua_bytes):
        raise _Stop("memory")
    if event_shape is not None:
        event_vals = rt.new_table(shaped.vals)
    gen = getattr(inv.modules, "generation", None)
    status = await _call(
        rt, inv, rt.sandbox.start, inv.script.fn, inv.deadline, cpu_slice, gen,
        event_shape, event_vals, *args,
    )  # fmt: skip
    if status[0] == SDK_REQUEST:
        inv.handle = status[2]
    return status


@functools.lru_cache(maxsize=4096)
def _app_args(app: AppInfo) -> tuple[bytes, bytes, bytes]:
    return app.id.encode(), app.slug.encode(), app.name.encode()


def _ctx_args(ctx: InvocationContext) -> tuple[list[Any], int]:
    """``ctx`` as the arguments bridge.lua's build_ctx reads, and their Lua size."""
    args: list[Any] = [
        ctx.execution_id.encode(),
        *_app_args(ctx.app),
        ctx.trigger_depth,
        ctx.attempt,
    ]
    req = ctx.request
    if req is None:
        args.append(0)
        return args, 2048
    size = 2048 + len(req.body) + len(req.path)
    args += (1, req.method.encode(), req.path.encode(), req.body)
    for mapping in (req.params, req.query, req.headers):
        args.append(len(mapping))
        for key, value in mapping.items():
            args += (key.encode(), value.encode())
            size += len(key) + len(value)
    return args, size + 120 * len(args)


async def _call(
    rt: AppRuntime, inv: Invocation, fn: Any, *args: Any
) -> tuple[Any, ...]:
    """One step of Lua, here or on a worker thread (see the module docstring)."""
    if not inv.threaded:
        return _step(rt, inv, fn, args)
    loop = asyncio.get_running_loop()
    step = loop.run_in_executor(rt.executor, _step, rt, inv, fn, args)
    try:
        return await asyncio.shield(step)
    except asyncio.CancelledError:
        # The thread is inside the Lua state: make its hook end the step, and
        # let nothing touch the runtime before it has.
        inv.stopping = True
        while not step.done():
            try:
                await asyncio.shield(step)
            except asyncio.CancelledError:
                continue
            except Exception:  # noqa: BLE001  # the step's own failure: the cancellation wins
                break
        raise


def _step(
    rt: AppRuntime, inv: Invocation, fn: Any, args: tuple[Any, ...]
) -> tuple[Any, ...]:
    """One step of Lua; :attr:`AppRuntime.current` names ``inv`` meanwhile."""
    rt.enter(inv)
    inv.step_cpu = time.thread_time()
    try:
        result: tuple[Any, ...] = fn(*args)
    except LuaMemoryError:
        raise _Stop("memory") from None
    except LuaError as e:
        _log.error("sandbox failure in %s: %s", inv.script.name, e)
        raise ScriptRuntimeError(f"{inv.script.name}: internal error") from None
    finally:
        inv.cpu_s += time.thread_time() - inv.step_cpu
        rt.leave()
    return result


async def _serve(
    rt: AppRuntime, inv: Invocation, sdk: SdkHandler, status: tuple[Any, ...]
) -> tuple[Any, ...]:
    """Answer SDK requests until the script ends, all within its deadline.

    A request is ``(SDK_REQUEST, count, handle|False, op, args_json, *strings)``:
    the arguments come as JSON text, or (when that is nil) as plain strings.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None  # noqa: S101  # run() is awaited by a task
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    # Not asyncio.timeout: one per invocation cost ~11 µs (see Deadlines).
    when = loop.time() + (inv.deadline - time.monotonic())
    pending = deadlines()
    deadline = pending.arm(when, expire)
    resume, handle = rt.sandbox.resume, inv.handle
    try:
        while status[0] == SDK_REQUEST:
            payload = status[4]
            if payload is None:
                args: list[Any] = [arg.decode() for arg in status[5:]]
            else:
                args = _decode_args(payload)
            op = _op_name(status[3])
            if inv.sliced and op in rt.effects:
                _pin(rt, inv)
            try:
                value = await sdk(op, args)
            except SdkCallError as e:
                answer: tuple[Any, ...] = (False, e.message.encode()[:MAX_MESSAGE])
            else:
                answer = _to_lua(rt, value)
            status = await _call(rt, inv, resume, handle, *answer)
    except asyncio.CancelledError:
        if expired and task.uncancel() == 0:
            raise _Stop("time") from None
        raise
    finally:
        pending.disarm(deadline)
    return status


def _pin(rt: AppRuntime, inv: Invocation) -> None:
    """Before an effect leaves the sandbox (``http.fetch``): the run may no
    longer be stopped at its slice and started again elsewhere, which would
    repeat the effect. Its next steps run on a worker thread instead, where a
    long one cannot stall the loop."""
    inv.sliced = False
    inv.threaded = rt.executor is not None
    rt.enter(inv)
    try:
        rt.sandbox.unslice(inv.handle)
    finally:
        rt.leave()


@functools.lru_cache(maxsize=64)
def _op_name(op: bytes) -> str:
    return op.decode()


def _to_lua(rt: AppRuntime, value: Any) -> tuple[Any, ...]:
    """``value`` as resume arguments: scalars as they are, the rest shaped."""
    kind = type(value)
    if kind is str:
        data = value.encode()
        if len(data) + 2 > rt.limits.max_value_bytes:
            raise _Stop("value_bytes")
        if len(data) > 4096 and not rt.fits(len(data) + 64):
            raise _Stop("memory")
        return (True, b"s", data)
    if value is None:
        return (True,)
    limits = rt.limits
    if kind is bool:
        return (True, b"t" if value else b"f")
    if (kind is int and _INT_MIN <= value <= _INT_MAX) or kind is float:
        return (True, b"n", value)
    try:
        shaped = shape_value(
            value,
            max_bytes=limits.max_value_bytes,
            # A stored value arrives wrapped: a page of items of envelopes.
            max_depth=limits.max_value_depth + SDK_WRAPPING,
        )
    except ValueLimitHit as e:
        raise _Stop(e.limit) from None
    if not rt.fits(shaped.lua_bytes):
        raise _Stop("memory")
    return (True, shaped.shape, rt.new_table(shaped.vals))


def _abort(rt: AppRuntime, inv: Invocation, reason: str) -> str | None:
    if inv.handle is None:
        return None
    handle, inv.handle = inv.handle, None
    rt.enter(inv)
    try:
        where = rt.sandbox.abort(handle, reason.encode())
    except LuaError:
        return None
    finally:
        rt.leave()
    return where.decode() if isinstance(where, bytes) else None


def _conclude(
    inv: Invocation, status: tuple[Any, ...], started: float
) -> InvocationResult:
    kind, count = status[0], status[1]
    name = inv.script.name
    if kind == DONE:
        response, value = response_from(status[2:], name)
        return InvocationResult(
            response=response,
            value=value,
            logs=inv.logs,
            instructions=count,
            duration_ms=(time.perf_counter() - started) * 1000,
            cpu_ms=inv.cpu_s * 1000,
        )
    if kind == LIMIT:
        limit = status[2].decode()
        if limit == "slice":
            raise _failed(inv, ScriptPreempted(f"{name}: outran its slice"))
        where = status[3].decode() if isinstance(status[3], bytes) else None
        raise _limit(inv, limit, where)
    raise _failed(
        inv, ScriptRuntimeError(_message(name, status[2].decode("utf-8", "replace")))
    )


def _message(name: str, text: str) -> str:
    if not _POSITIONED.match(text):
        text = f"{name}: {text}"
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + "..."
    return text


_DETAILS = {
    "instructions": lambda lim: f"{lim.max_instructions} instructions",
    "time": lambda lim: f"{lim.timeout_ms} ms",
    "memory": lambda lim: f"{lim.max_memory_bytes} bytes",
    "call_depth": lambda lim: f"{lim.max_call_depth} nested calls",
    "value_bytes": lambda lim: f"{lim.max_value_bytes} bytes",
    "value_depth": lambda lim: f"{lim.max_value_depth} levels",
    "log_bytes": lambda lim: f"{lim.max_log_bytes} bytes",
    "response_bytes": lambda lim: f"{lim.max_response_bytes} bytes",
}


def _limit(inv: Invocation, limit: str, where: str | None) -> ScriptError:
    limits = inv.script.runtime.limits
    detail = _DETAILS[limit](limits) if limit in _DETAILS else limit
    message = (
        f"{where or inv.script.name}: script exceeded the {limit} limit ({detail})"
    )
    error = (
        ScriptTimeout(message)
        if limit == "time"
        else ScriptLimitExceeded(limit, message)
    )
    return _failed(inv, error)


def _failed(inv: Invocation, error: ScriptError) -> ScriptError:
    error.logs = inv.logs  # type: ignore[attr-defined]  # read through logs_of()
    error.cpu_ms = inv.cpu_s * 1000  # type: ignore[attr-defined]  # read through cpu_ms_of()
    return error


def cpu_ms_of(error: BaseException) -> float:
    """The CPU milliseconds a failed invocation used (0 when unknown)."""
    cpu: float = getattr(error, "cpu_ms", 0.0)
    return cpu
