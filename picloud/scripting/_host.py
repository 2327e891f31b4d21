"""The Python functions the sandbox calls synchronously (the `host` table of
core.lua). They are reachable only from the sandbox's own Lua code.

Every function here:
- takes only Lua strings (bytes), numbers, booleans or nil;
- never raises: it returns ``(True, values...)``, ``(False, message)`` for the
  script's mistake, or ``(None, limit)`` for a limit, because an exception
  would reach Lua as a Python object;
- returns only bytes, numbers, booleans, None or tables it made with
  ``table_from`` from such values, after checking the Lua heap has room for
  them, so lupa never has to allocate past the hard memory limit outside a
  protected call;
- never calls a Lua function (inside a callback that would corrupt the stack
  of the Lua call in progress) and keeps no Lua object it was given.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from . import _stdlib as std
from ._convert import ValueLimitHit, shape_value
from .context import LogLine, ModuleSource
from .modules import load_problem

if TYPE_CHECKING:
    from .limits import ScriptLimits

__all__ = ["Host", "HostState"]

_log = logging.getLogger(__name__)
_decode_json = msgspec.json.decode

Result = tuple[Any, ...]


class HostState(Protocol):
    """The runtime as its host functions need it."""

    def fits(self, lua_bytes: int) -> bool: ...
    def clock(self) -> float: ...
    def running_cpu(self) -> float: ...
    def new_table(self, vals: list[Any]) -> Any: ...
    def running_logs(self) -> list[LogLine]: ...
    def running_modules(self) -> ModuleSource | None: ...


class _Limit(Exception):
    def __init__(self, limit: str) -> None:
        super().__init__(limit)
        self.limit = limit


def _guarded(fn: Callable[..., Result]) -> Callable[..., Result]:
    @functools.wraps(fn)
    def wrapper(*args: Any) -> Result:
        try:
            return fn(*args)
        except std.StdlibError as e:
            return (False, str(e).encode())
        except (_Limit, ValueLimitHit) as e:
            return (None, e.limit.encode())
        # The boundary to Lua: whatever went wrong, the script gets a plain
        # message and never the exception object.
        except Exception:  # noqa: BLE001
            _log.exception("sandbox host function %s failed", fn.__name__)
            return (False, b"internal error")

    return wrapper


class Host:
    """Host functions bound to one runtime."""

    def __init__(self, state: HostState, limits: ScriptLimits) -> None:
        self._state = state
        self._limits = limits
        self._regex = std.REGEX

    def functions(self) -> dict[bytes, Callable[..., Any]]:
        names = [
            "json_decode", "log", "module", "b64_encode", "b64_decode", "b64url_encode",
            "b64url_decode", "hex_encode", "hex_decode", "url_encode", "url_decode",
            "url_parse", "url_parse_query", "url_build_query", "re_match", "re_find",
            "re_find_all", "re_replace", "re_split", "time_now", "time_unix",
            "time_format", "time_parse", "rand_int", "rand_float", "rand_uuid",
            "rand_bytes",
        ]  # fmt: skip
        table: dict[bytes, Callable[..., Any]] = {
            name.encode(): _guarded(getattr(self, name)) for name in names
        }
        # Called by the hook every few thousand instructions: unguarded (they
        # cannot fail), and the runtime's own (see AppRuntime.clock).
        table[b"clock"] = self._state.clock
        table[b"cpu_clock"] = self._state.running_cpu
        return table

    # -- returning values ---------------------------------------------------------

    def _bytes(self, data: bytes) -> Result:
        if len(data) > 4096 and not self._state.fits(len(data) + 64):
            raise _Limit("memory")
        return (True, data)

    def _value(self, value: Any) -> Result:
        shaped = shape_value(
            value,
            max_bytes=self._limits.max_value_bytes,
            max_depth=self._limits.max_value_depth,
        )
        if not self._state.fits(shaped.lua_bytes):
            raise _Limit("memory")
        return (True, shaped.shape, self._state.new_table(shaped.vals))

    # -- json, log, require --------------------------------------------------------

    def json_decode(self, text: bytes) -> Result:
        try:
            value = _decode_json(text)
        except msgspec.DecodeError as e:
            raise std.StdlibError(f"invalid JSON: {e}") from e
        except RecursionError:
            raise _Limit("value_depth") from None
        return self._value(value)

    def log(self, level: bytes, message: bytes) -> Result:
        self._state.running_logs().append(
            LogLine(
                level=level.decode(),
                time=time.time(),
                message=message.decode("utf-8", "replace"),
            )
        )
        return (True,)

    def module(self, name: bytes, cached: bytes | None) -> Result:
        """The module's token (its id and version), and its source unless
        ``cached`` is that token. A source is shape-checked before it is
        handed over for compiling (memoised per source text, modules.py)."""
        source = self._state.running_modules()
        text = name.decode("utf-8", "replace")
        spec = source.lookup(text) if source is not None else None
        if spec is None:
            raise std.StdlibError(f"module '{text}' not found")
        token = f"{spec.id}@{spec.version}".encode()
        if token == cached:
            return (True, token)
        problem = load_problem(spec.name, spec.source)
        if problem is not None:
            raise std.StdlibError(problem)
        _, source_text = self._bytes(spec.source.encode())
        return (True, token, source_text)

    # -- codecs ----------------------------------------------------------------------

    def b64_encode(self, data: bytes) -> Result:
        return self._bytes(std.b64_encode(data))

    def b64_decode(self, data: bytes) -> Result:
        return self._bytes(std.b64_decode(data))

    def b64url_encode(self, data: bytes) -> Result:
        return self._bytes(std.b64url_encode(data))

    def b64url_decode(self, data: bytes) -> Result:
        return self._bytes(std.b64url_decode(data))

    def hex_encode(self, data: bytes) -> Result:
        return self._bytes(std.hex_encode(data))

    def hex_decode(self, data: bytes) -> Result:
        return self._bytes(std.hex_decode(data))

    def url_encode(self, data: bytes) -> Result:
        return self._bytes(std.url_encode(data))

    def url_decode(self, data: bytes) -> Result:
        return self._bytes(std.url_decode(data))

    def url_parse(self, data: bytes) -> Result:
        return self._value(std.url_parse(data))

    def url_parse_query(self, data: bytes) -> Result:
        return self._value(std.url_parse_query(data))

    def url_build_query(self, json_text: bytes) -> Result:
        return self._bytes(std.url_build_query(_decode_json(json_text)))

    # -- regex -----------------------------------------------------------------------

    def re_match(self, pattern: bytes, subject: bytes, init: int) -> Result:
        found = std.re_match(self._regex, pattern, subject, init)
        return (True, None) if found is None else self._value(found)

    def re_find(self, pattern: bytes, subject: bytes, init: int) -> Result:
        span = std.re_find(self._regex, pattern, subject, init)
        return (True, None) if span is None else (True, *span)

    def re_find_all(self, pattern: bytes, subject: bytes, limit: int) -> Result:
        return self._value(std.re_find_all(self._regex, pattern, subject, limit))

    def re_replace(
        self, pattern: bytes, subject: bytes, repl: bytes, count: int
    ) -> Result:
        text, n = std.re_replace(self._regex, pattern, subject, repl, count)
        return (*self._bytes(text), n)

    def re_split(self, pattern: bytes, subject: bytes, maxsplit: int) -> Result:
        return self._value(std.re_split(self._regex, pattern, subject, maxsplit))

    # -- time and random ---------------------------------------------------------------

    def time_now(self) -> Result:
        return (True, std.time_now())

    def time_unix(self) -> Result:
        return (True, std.time_unix())

    def time_format(self, t: float | None, fmt: bytes | None) -> Result:
        return self._bytes(std.time_format(t, fmt))

    def time_parse(self, text: bytes) -> Result:
        return (True, std.time_parse(text))

    def rand_int(self, m: int | None, n: int | None) -> Result:
        return (True, std.rand_int(m, n))

    def rand_float(self) -> Result:
        return (True, std.rand_float())

    def rand_uuid(self) -> Result:
        return (True, std.rand_uuid())

    def rand_bytes(self, n: int) -> Result:
        return self._bytes(std.rand_bytes(n))
