"""Creating a sandboxed ``lupa.lua54`` runtime: the Lua files of this package
are loaded into a fresh state, which they then strip of its real globals.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import resources
from typing import Any, NamedTuple

from lupa import lua54

from .sdk_spec import NO_SDK, SdkSpec

__all__ = ["LuaError", "LuaMemoryError", "Sandbox", "open_sandbox"]

LuaError = lua54.LuaError
LuaMemoryError = lua54.LuaMemoryError

TICK = 2000
"""Instructions between two runs of the hook (time, memory, depth checks)."""

_CHUNKS = ("guards", "bridge", "stdlib")


@functools.cache
def lua_source(name: str) -> bytes:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_bytes()


def _deny_get(obj: object, name: object) -> object:
    raise AttributeError("no Python attribute is reachable from Lua")


def _deny_set(obj: object, name: object, value: object) -> None:
    raise AttributeError("no Python attribute is reachable from Lua")


class Sandbox(NamedTuple):
    lua: Any
    """The ``lupa.lua54.LuaRuntime``; only this package touches it."""
    start: Any
    resume: Any
    abort: Any
    compile: Any
    configure: Any
    unslice: Any
    internal: Any
    """core.lua's table ``I`` (for diagnostics; never handed to a script)."""


def open_sandbox(
    host: dict[bytes, Callable[..., Any]],
    *,
    max_memory: int,
    sdk: SdkSpec = NO_SDK,
) -> Sandbox:
    """A new Lua state with the sandbox installed and the real globals gone.

    ``host`` maps names to the Python functions core.lua may call; ``sdk``
    is what sdk.lua builds the SDK from.
    """
    lua = lua54.LuaRuntime(
        encoding=None,
        register_eval=False,
        register_builtins=False,
        unpack_returned_tuples=True,
        max_memory=max_memory,
        attribute_handlers=(_deny_get, _deny_set),
    )
    # Capture `load` before core.lua deletes the globals.
    loader = lua.eval(
        b"(function(load) return function(src, name) return load(src, name, 't') end"
        b" end)(load)"
    )

    def chunk(name: str) -> Any:
        fn, err = _pair(loader(lua_source(name), f"=sandbox.{name}".encode()))
        if fn is None:
            raise LuaError(f"sandbox.{name}: {err!r}")
        return fn

    internal = chunk("core")(lua.table_from(host), TICK)
    for name in _CHUNKS:
        chunk(name)(internal)
    chunk("sdk")(internal, _to_lua(lua, sdk.to_lua()))
    return Sandbox(
        lua=lua,
        start=internal[b"start"],
        resume=internal[b"resume"],
        abort=internal[b"abort"],
        compile=internal[b"compile"],
        configure=internal[b"configure"],
        unslice=internal[b"unslice"],
        internal=internal,
    )


def _to_lua(lua: Any, value: object) -> object:
    """Plain data as Lua tables, strings as bytes (the runtime has no encoding)."""
    if isinstance(value, dict):
        return lua.table_from({k.encode(): _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return lua.table_from([_to_lua(lua, v) for v in value])
    if isinstance(value, str):
        return value.encode()
    return value


def _pair(result: Any) -> tuple[Any, Any]:
    if isinstance(result, tuple):
        return result[0], result[1] if len(result) > 1 else None
    return result, None
