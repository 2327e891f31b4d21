"""One app's Lua runtime: compile scripts once, invoke them many times.

Guarantees (the first sandbox layer, DESIGN.md "Scripts"):
- one ``lupa.lua54.LuaRuntime`` per :class:`AppRuntime`, never shared: apps
  cannot see each other;
- each invocation gets a fresh environment and ``ctx``; nothing one
  invocation writes (globals, library tables, metatables) is seen by the next;
- a limit hit raises :class:`~picloud.errors.ScriptLimitExceeded` naming the
  limit, and leaves the runtime fit for the next invocation;
- no Python object ever reaches a script;
- :attr:`AppRuntime.current` names the invocation whose Lua code is running
  and its hard deadline, for a :class:`~picloud.scripting.Watchdog`.

Not thread-safe: use a runtime from one thread (its event loop). Invocations
may interleave at their SDK awaits.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from picloud.errors import ScriptLimitExceeded

from . import _driver
from ._driver import Mode
from ._host import Host
from ._lua import LuaMemoryError, open_sandbox
from .limits import ScriptLimits
from .sdk_spec import NO_SDK, SdkSpec
from .validate import SCRIPT_NAME, syntax_error

if TYPE_CHECKING:
    from .context import (
        CurrentInvocation,
        InvocationContext,
        InvocationResult,
        LogLine,
        ModuleSource,
        SdkHandler,
    )

__all__ = ["AppRuntime", "CompiledScript"]

MIB = 1 << 20
_MARGIN = 1 * MIB
"""Heap kept free for lupa's own small unprotected allocations."""
_GC_AFTER_GROWTH = 4 * MIB
_FAR_FUTURE = float("inf")


class CompiledScript:
    """A script compiled in one runtime; invoke it there as often as needed."""

    __slots__ = ("fn", "name", "runtime")

    def __init__(self, runtime: AppRuntime, name: str, fn: Any) -> None:
        self.runtime = runtime
        self.name = name
        self.fn = fn

    def __repr__(self) -> str:
        return f"<CompiledScript {self.name!r} of app {self.runtime.app_id!r}>"


class AppRuntime:
    """The Lua runtime of one app.

    Memory: the Lua heap may grow by ``limits.max_memory_bytes`` during an
    invocation (checked by the hook and before every SDK call); the hard
    allocator limit sits a head-room above, so values Python hands to Lua always
    fit and lupa never fails an allocation outside a protected call.
    """

    def __init__(
        self,
        app_id: str,
        limits: ScriptLimits | None = None,
        *,
        module_cache_size: int = 512,
        sdk: SdkSpec = NO_SDK,
        executor: Executor | None = None,
    ) -> None:
        """``module_cache_size``: compiled modules kept (LRU, by module name);
        ``sdk``: the SDK scripts get (the table of SDK operations);
        ``executor``: the worker threads of :attr:`Mode.THREAD` invocations."""
        if module_cache_size < 1:
            raise ValueError("module_cache_size must be positive")
        self.app_id = app_id
        self.executor = executor
        self.effects = frozenset(f.op for f in sdk.functions if f.effect)
        """SDK operations after which a run is never started again (driver)."""
        self.limits = limits or ScriptLimits()
        self.headroom = 16 * self.limits.max_value_bytes + 2 * MIB
        self._host = Host(self, self.limits)
        self._hard = 64 * MIB + self.headroom
        self._sandbox = open_sandbox(
            self._host.functions(), max_memory=self._hard, sdk=sdk
        )
        self._lua = self._sandbox.lua
        lim = self.limits
        self._sandbox.configure(
            lim.max_instructions,
            lim.max_memory_bytes,
            lim.max_call_depth,
            lim.max_log_bytes,
            lim.max_value_bytes,
            lim.max_value_depth,
            lim.max_response_bytes,
            lim.module_import_depth_max,
            module_cache_size,
        )
        self._current: CurrentInvocation | None = None
        self._running: _driver.Invocation | None = None
        self._closed = False
        self._after_gc = self._lua.get_memory_used()

    # -- public ------------------------------------------------------------------

    @property
    def current(self) -> CurrentInvocation | None:
        """The invocation whose Lua code runs right now (None between calls)."""
        return self._current

    def memory_bytes(self) -> int:
        """The Lua heap of this runtime, in bytes."""
        used: int = self._lua.get_memory_used(total=True)
        return used

    def compile(self, name: str, source: str) -> CompiledScript:
        """Compile ``source`` as script ``name`` (``^[a-zA-Z_][a-zA-Z0-9_]{0,63}$``).

        Raises:
            ScriptSyntaxError: the source does not compile; ``line`` is set.
            ScriptLimitExceeded: the source does not fit in memory.
            ValueError: an invalid name, or the runtime is closed.
        """
        self._check_open()
        if not SCRIPT_NAME.fullmatch(name):
            raise ValueError(f"invalid script name {name!r}")
        data = source.encode()
        self._set_hard(self._lua.get_memory_used() + 4 * len(data) + self.headroom)
        try:
            fn, err = _pair(self._sandbox.compile(name.encode(), data))
        except LuaMemoryError as e:
            raise ScriptLimitExceeded(
                "memory", f"{name}: the script does not fit in memory"
            ) from e
        if fn is None:
            message = err.decode("utf-8", "replace")
            if message == "not enough memory":
                raise ScriptLimitExceeded(
                    "memory", f"{name}: the script does not fit in memory"
                )
            raise syntax_error(name, message)
        return CompiledScript(self, name, fn)

    async def invoke(  # noqa: PLR0913  # the invocation and where it runs
        self,
        script: CompiledScript,
        ctx: InvocationContext,
        sdk: SdkHandler,
        modules: ModuleSource | None = None,
        *,
        mode: Mode = Mode.INLINE,
        slice_s: float = 0.0,
    ) -> InvocationResult:
        """Run ``script`` once with ``ctx``; SDK calls are awaited on ``sdk``.

        ``mode`` says where its Lua steps run (:class:`Mode`): on this thread,
        on it for at most ``slice_s`` seconds of its own CPU time (then
        ScriptPreempted), or on a
        worker thread of the runtime's executor. Calls for one runtime must
        not overlap (the app's actor runs one command at a time).

        Raises:
            ScriptPreempted: a SLICED invocation outran its slice; nothing it
                did left the sandbox, so it may be run again.
            ScriptRuntimeError: the script failed; the message has its name and
                line. The logs so far are on the exception (see
                :func:`~picloud.scripting.logs_of`).
            ScriptLimitExceeded: a limit was hit (``ScriptTimeout`` for time).
            ValueError: the script belongs to another runtime, or this one is closed.
            Exception: whatever ``sdk`` raised other than ``SdkCallError``.
        """
        self._check_open()
        if script.runtime is not self:
            raise ValueError("the script was compiled by another runtime")
        if mode is Mode.THREAD and self.executor is None:
            raise ValueError("this runtime has no executor for worker threads")
        return await _driver.run(
            self, script, ctx, sdk, modules, mode=mode, slice_s=slice_s
        )

    def close(self) -> None:
        """Refuse further compiles and invocations. The Lua state is freed
        once this runtime and its compiled scripts are no longer referenced
        (lupa has no explicit close); no script code runs then, since the
        sandbox refuses ``__gc``."""
        self._closed = True
        self._running = None
        self._current = None

    # -- for the driver and the host functions ----------------------------------------

    def begin(self) -> None:
        """Before an invocation: reclaim garbage if the heap grew, then set the
        hard limit to the current heap + the invocation's memory + head-room."""
        used = self._lua.get_memory_used()
        if used > self._after_gc + _GC_AFTER_GROWTH:
            self._lua.gccollect()
            used = self._after_gc = self._lua.get_memory_used()
        self._set_hard(used + self.limits.max_memory_bytes + self.headroom)

    def _set_hard(self, limit: int) -> None:
        self._hard = limit
        self._lua.set_max_memory(limit)

    def fits(self, lua_bytes: int) -> bool:
        """Whether ``lua_bytes`` more can be allocated unprotected; collects
        garbage once before saying no."""
        used: int = self._lua.get_memory_used()
        if used + lua_bytes + _MARGIN <= self._hard:
            return True
        self._lua.gccollect()
        used = self._lua.get_memory_used()
        return used + lua_bytes + _MARGIN <= self._hard

    def clock(self) -> float:
        """The sandbox's clock (deadlines): monotonic time, or the far
        future once the loop asked a step on a worker thread to stop, so the
        hook ends it at its next run."""
        running = self._running
        if running is not None and running.stopping:
            return _FAR_FUTURE
        return time.monotonic()

    def running_cpu(self) -> float:
        """The running invocation's CPU seconds (``os.clock()`` in Lua)."""
        running = self._running
        return 0.0 if running is None else running.cpu_now()

    def new_table(self, vals: list[Any]) -> Any:
        return self._lua.table_from(vals)

    def running_logs(self) -> list[LogLine]:
        return self._invocation().logs

    def running_modules(self) -> ModuleSource | None:
        return self._invocation().modules

    def _invocation(self) -> _driver.Invocation:
        if self._running is None:
            raise RuntimeError("no invocation is running")
        return self._running

    def enter(self, invocation: _driver.Invocation) -> None:
        self._running = invocation
        self._current = invocation.current

    def leave(self) -> None:
        self._running = None
        self._current = None

    @property
    def sandbox(self) -> Any:
        return self._sandbox

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"the runtime of app {self.app_id!r} is closed")


def _pair(result: Any) -> tuple[Any, Any]:
    if isinstance(result, tuple):
        return result[0], result[1] if len(result) > 1 else None
    return result, None
