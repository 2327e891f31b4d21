"""The Lua sandbox and standard library (SPEC.md §2, DESIGN.md "Scripts").

Usable on its own: no Ray, HTTP or Postgres. The host (the actor layer)
creates one :class:`AppRuntime` per app, compiles scripts once, invokes them
with an :class:`InvocationContext` and an :class:`SdkHandler` that performs
the app's I/O, and runs a :class:`Watchdog` that kills the process when an
invocation overruns its hard deadline (the second sandbox layer).
"""

from __future__ import annotations

from picloud.errors import SdkCallError

from ._driver import Mode, cpu_ms_of, logs_of
from .context import (
    AppInfo,
    CurrentInvocation,
    InvocationContext,
    InvocationResult,
    JSONValue,
    LogLine,
    ModuleSource,
    ModuleSpec,
    RequestData,
    ScriptResponse,
    SdkHandler,
)
from .limits import ScriptLimits
from .runtime import AppRuntime, CompiledScript
from .validate import validate_source
from .watchdog import Watchdog

__all__ = [
    "AppInfo",
    "AppRuntime",
    "CompiledScript",
    "CurrentInvocation",
    "InvocationContext",
    "InvocationResult",
    "JSONValue",
    "LogLine",
    "Mode",
    "ModuleSource",
    "ModuleSpec",
    "RequestData",
    "ScriptLimits",
    "ScriptResponse",
    "SdkCallError",
    "SdkHandler",
    "Watchdog",
    "cpu_ms_of",
    "logs_of",
    "validate_source",
]
