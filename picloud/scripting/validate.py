"""Save-time validation of a script's source (SPEC.md §1)."""

from __future__ import annotations

import re
import threading
from typing import Any

from lupa import lua54

from picloud.errors import ScriptSyntaxError

__all__ = ["SCRIPT_NAME", "syntax_error", "validate_source"]

SCRIPT_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")
_POSITION = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*):(\d+): (.*)$", re.DOTALL)
_BASE_MEMORY = 64 << 20
_local = threading.local()

# Compiles as the runtime does (runtime.py / core.lua): as a chunk, then inside
# the per-invocation wrapper. Nothing is ever run.
_CHECKER = b"""(function(load)
  return function(src, name)
    local f, err = load(src, name, "t", {})
    if not f then return err end
    f, err = load("return function(_ENV, ...) " .. src .. "\\nend", name, "t", {})
    return err
  end
end)(load)"""


def _checker() -> Any:
    found = getattr(_local, "checker", None)
    if found is None:
        lua = lua54.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            max_memory=_BASE_MEMORY,
        )
        found = (lua, lua.eval(_CHECKER))
        _local.checker = found
    return found


def syntax_error(name: str, message: str) -> ScriptSyntaxError:
    """``name:LINE: reason`` from Lua -> a ScriptSyntaxError with ``line``."""
    m = _POSITION.match(message)
    if m is None:  # e.g. a binary chunk: the problem is at its start
        return ScriptSyntaxError(f"{name}:1: {message}", line=1)
    return ScriptSyntaxError(f"{name}:{m.group(2)}: {m.group(3)}", line=int(m.group(2)))


def validate_source(name: str, source: str) -> None:
    """Check that ``source`` compiles as Lua 5.4 text (binary chunks never do).

    Raises:
        ScriptSyntaxError: with ``line`` (1-based) and a message
            ``"name:LINE: reason"``.
        ValueError: ``name`` is not a valid script name.
    """
    if not SCRIPT_NAME.fullmatch(name):
        raise ValueError(f"invalid script name {name!r}")
    data = source.encode()
    lua, check = _checker()
    lua.set_max_memory(_BASE_MEMORY + 4 * len(data))
    try:
        err = check(data, b"=" + name.encode())
    except lua54.LuaMemoryError:
        err = b"not enough memory"
    finally:
        lua.gccollect()
    if err is not None:
        message = err.decode("utf-8", "replace")
        if message == "not enough memory":
            raise ScriptSyntaxError(f"{name}: the script is too large to compile")
        raise syntax_error(name, message)
