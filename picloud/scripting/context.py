"""The values that go into and come out of an invocation, and the two
interfaces the host implements for it (the SDK handler and the module source).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeAlias

import msgspec

__all__ = [
    "AppInfo",
    "CurrentInvocation",
    "InvocationContext",
    "InvocationResult",
    "JSONValue",
    "LogLine",
    "ModuleSource",
    "ModuleSpec",
    "RequestData",
    "ScriptResponse",
    "SdkHandler",
]

JSONValue: TypeAlias = (
    "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"
)


class AppInfo(msgspec.Struct, frozen=True, kw_only=True):
    """``ctx.app`` in Lua."""

    id: str
    slug: str
    name: str


class RequestData(msgspec.Struct, frozen=True, kw_only=True):
    """``ctx.request`` in Lua; ``ctx.request:json()`` decodes ``body``."""

    method: str
    path: str
    params: dict[str, str] = msgspec.field(default_factory=dict)
    query: dict[str, str] = msgspec.field(default_factory=dict)
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    body: bytes = b""


class InvocationContext(msgspec.Struct, frozen=True, kw_only=True):
    """Everything an invocation knows about why it runs; becomes ``ctx``."""

    execution_id: str
    app: AppInfo
    request: RequestData | None = None
    event: dict[str, Any] | None = None
    """JSON-like; ``ctx.event`` in Lua (JSON null becomes ``json.null``)."""
    trigger_depth: int = 0
    attempt: int = 1
    """``ctx.attempt``: 1 for the first run of a delivery, 2 for its first retry…"""


class ScriptResponse(msgspec.Struct, frozen=True, kw_only=True):
    """The HTTP answer normalised from the script's return value (SPEC.md §1)."""

    status: int
    headers: dict[str, str]
    body: bytes


class LogLine(msgspec.Struct, frozen=True, kw_only=True):
    level: str
    """``debug``, ``info``, ``warn`` or ``error``."""
    time: float
    """Unix time in seconds."""
    message: str


class InvocationResult(msgspec.Struct, frozen=True, kw_only=True):
    response: ScriptResponse
    value: Any
    """The script's return value as JSON-like data (what triggers look at)."""
    logs: list[LogLine]
    instructions: int
    """Counted by the hook, so in steps of its interval (2000 instructions,
    fewer with a large heap), plus C-level work charged by size."""
    duration_ms: float
    cpu_ms: float = 0.0
    """CPU time of the invocation's own Lua steps (what ``os.clock()`` tells it)."""


class CurrentInvocation(msgspec.Struct, frozen=True, kw_only=True):
    """The invocation whose Lua code a runtime is executing right now."""

    app_id: str
    execution_id: str
    hard_deadline: float
    """``time.monotonic()`` after which the host process must be killed."""


class ModuleSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A module script of the app, as ``require`` needs it."""

    name: str
    version: int
    source: str
    id: str = ""
    """The script's id: with ``version`` it identifies the compiled code, so a
    module deleted and created again under its name is never confused with
    the old one."""


class ModuleSource(Protocol):
    """Resolves ``require(name)`` to the app's own module script, or None.

    A source may also have an integer attribute ``generation``: two sources
    with the same generation promise the same answers, so a runtime skips
    the lookup of a module it compiled under the current generation.
    """

    def lookup(self, name: str) -> ModuleSpec | None: ...


class SdkHandler(Protocol):
    """Performs one I/O SDK operation of the invoking app.

    ``op`` is the :attr:`~picloud.scripting.sdk_spec.SdkFunction.op` of one of
    the runtime's SDK functions (``kv.get``…); ``args`` are its Lua arguments
    as JSON-like values (a collection's name first). Raise
    :class:`~picloud.errors.SdkCallError` to fail the Lua call with its
    message; any other exception aborts the invocation and propagates.
    """

    async def __call__(self, op: str, args: list[JSONValue]) -> JSONValue: ...
