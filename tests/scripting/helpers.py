"""Helpers shared by the test modules of this folder."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from picloud.errors import SdkCallError
from picloud.scripting import (
    AppInfo,
    AppRuntime,
    InvocationContext,
    InvocationResult,
    JSONValue,
    Mode,
    ModuleSource,
    ModuleSpec,
    RequestData,
    ScriptLimits,
)

MIB = 1 << 20


# Small enough that limit tests are fast, large enough for ordinary scripts.
TEST_LIMITS = ScriptLimits(
    max_instructions=5_000_000,
    timeout_ms=2_000,
    hard_deadline_grace_ms=2_000,
    max_memory_bytes=16 * MIB,
    max_call_depth=100,
    max_value_bytes=256 * 1024,
    max_value_depth=16,
    max_log_bytes=8 * 1024,
    max_response_bytes=512 * 1024,
    module_import_depth_max=4,
)


_ids = itertools.count()


def make_ctx(
    app_id: str = "app-a",
    *,
    request: RequestData | None = None,
    event: dict[str, Any] | None = None,
) -> InvocationContext:
    return InvocationContext(
        execution_id=f"inv-{next(_ids)}",
        app=AppInfo(id=app_id, slug=f"{app_id}-slug", name=f"App {app_id}"),
        request=request,
        event=event,
    )


class MemorySdk:
    """An SDK handler with a real (in-memory) KV store; records every call."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.kv: dict[tuple[str, str], JSONValue] = {}
        self.calls: list[tuple[str, list[JSONValue]]] = []
        self.delay = delay
        self.answers: dict[str, JSONValue] = {}

    async def __call__(self, op: str, args: list[JSONValue]) -> JSONValue:
        self.calls.append((op, args))
        if self.delay:
            await asyncio.sleep(self.delay)
        if op in self.answers:
            return self.answers[op]
        if op == "kv.get":
            return self.kv.get((str(args[0]), str(args[1])))
        if op == "kv.set":
            self.kv[(str(args[0]), str(args[1]))] = args[2]
            return None
        if op == "kv.has":
            return (str(args[0]), str(args[1])) in self.kv
        if op == "kv.delete":
            return self.kv.pop((str(args[0]), str(args[1])), None) is not None
        if op == "kv.list":
            items: list[JSONValue] = [
                {"key": k, "value": v}
                for (c, k), v in sorted(self.kv.items())
                if c == args[0]
            ]
            return {"items": items}
        raise SdkCallError(f"unsupported operation {op}")


class Modules:
    """A module source over a dict of name -> (version, source)."""

    def __init__(self, modules: dict[str, tuple[int, str]]) -> None:
        self.modules = modules
        self.lookups: list[str] = []

    def lookup(self, name: str) -> ModuleSpec | None:
        self.lookups.append(name)
        found = self.modules.get(name)
        if found is None:
            return None
        return ModuleSpec(name=name, version=found[0], source=found[1])


class Runner:
    """Compile-and-invoke helper bound to one runtime."""

    def __init__(self, runtime: AppRuntime) -> None:
        self.runtime = runtime
        self.sdk = MemorySdk()
        self._n = itertools.count()

    async def __call__(
        self,
        source: str,
        *,
        ctx: InvocationContext | None = None,
        sdk: Any = None,
        modules: ModuleSource | None = None,
        name: str | None = None,
        mode: Mode = Mode.INLINE,
        slice_s: float = 0.0,
    ) -> InvocationResult:
        script = self.runtime.compile(name or f"s{next(self._n)}", source)
        return await self.runtime.invoke(
            script,
            ctx or make_ctx(self.runtime.app_id),
            sdk or self.sdk,
            modules,
            mode=mode,
            slice_s=slice_s,
        )

    async def value(self, source: str, **kwargs: Any) -> Any:
        return (await self(source, **kwargs)).value


async def assert_healthy(*runners: Runner) -> None:
    """Each runtime still runs a script, uses its stdlib and reaches its SDK."""
    for runner in runners:
        result = await runner(
            'local c = kv.collection("health")\n'
            'c:set("k", {n = 1})\n'
            'return {ok = json.decode(json.encode(c:get("k"))).n == 1,'
            ' s = ("%d"):format(7), app = ctx.app.id}'
        )
        assert result.value == {"ok": True, "s": "7", "app": runner.runtime.app_id}
