"""Per-app Lua modules (SPEC.md §5): reserved names, the module shape, and the
literal import graph.

The shape is checked with a real Lua parser (luaparser) at save time and again
when a runtime loads a module (a defence against events written to the log
without the API). Both go through :func:`source_facts`, memoised by the hash
of the source in this process: a module saved through this process is never
parsed again when it loads, and one that only arrived through the log is
parsed once. The facts depend on the source text alone, so sharing them
between apps leaks nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections import OrderedDict

import msgspec

from picloud.errors import ModuleError, ModuleShapeError, ScriptSyntaxError

from ._luaparse import Unparsable, literal_requires, parse, shape_problem
from .validate import SCRIPT_NAME, validate_source

__all__ = [
    "RESERVED_MODULE_NAMES",
    "SourceFacts",
    "check_module_name",
    "check_module_source",
    "imports_of",
    "is_known",
    "load_problem",
    "prepare",
    "source_facts",
]

_SDK_NAMES = (
    "log regex random time json base64 hex url kv docs dead_letters http files "
    "pubsub secrets email users queue"
)
_LUA_LIBRARIES = "_G coroutine debug io math os package string table utf8"
RESERVED_MODULE_NAMES = frozenset((_SDK_NAMES + " " + _LUA_LIBRARIES).split())
"""Names a module may not have: SPEC.md §5's list and Lua's own libraries."""

_MEMO_ENTRIES = 4096
_PREPARE_MAX = 256 * 1024
# A fallback for sources luaparser cannot read (Lua accepts them): a literal
# require anywhere, comments included; a spurious edge only makes deleting
# the module ask for ?force=true.
_REQUIRE = re.compile(r"""\brequire\s*\(?\s*(["'])([A-Za-z_][A-Za-z0-9_]{0,63})\1""")


class SourceFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the parser found in one source text."""

    imports: tuple[str, ...]
    """Sorted literal ``require("name")`` names that can be modules."""
    shape: tuple[int, str] | None = None
    """The first reason (line, text) the source is not a valid module."""
    unparsable: tuple[int, str] | None = None
    """luaparser could not read the source: (line or 0, reason)."""


class _Memo:
    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._facts: OrderedDict[bytes, SourceFacts] = OrderedDict()

    def get(self, key: bytes) -> SourceFacts | None:
        with self._lock:
            found = self._facts.get(key)
            if found is not None:
                self._facts.move_to_end(key)
            return found

    def put(self, key: bytes, facts: SourceFacts) -> None:
        with self._lock:
            self._facts[key] = facts
            while len(self._facts) > self._size:
                self._facts.popitem(last=False)


_memo = _Memo(_MEMO_ENTRIES)


def source_facts(source: str) -> SourceFacts:
    """The imports and module shape of ``source``; parses only a source this
    process has not seen. Thread-safe: callers may run it in a thread."""
    key = hashlib.sha256(source.encode()).digest()
    facts = _memo.get(key)
    if facts is None:
        facts = _facts_of(source)
        _memo.put(key, facts)
    return facts


async def prepare(source: str) -> None:
    """Parse ``source`` in a thread unless this process knows it already, so
    that the checks that follow answer at once, off the event loop. A source
    larger than any script may be is left to the caller's size check."""
    if len(source) <= _PREPARE_MAX and not is_known(source):
        await asyncio.to_thread(source_facts, source)


def is_known(source: str) -> bool:
    """Whether :func:`source_facts` would answer without parsing."""
    return _memo.get(hashlib.sha256(source.encode()).digest()) is not None


def _facts_of(source: str) -> SourceFacts:
    try:
        chunk = parse(source)
    except Unparsable as e:
        names = {m.group(2) for m in _REQUIRE.finditer(source)}
        return SourceFacts(imports=_module_names(names), unparsable=(e.line, e.reason))
    return SourceFacts(
        imports=_module_names(literal_requires(chunk)), shape=shape_problem(chunk)
    )


def _module_names(names: set[str]) -> tuple[str, ...]:
    return tuple(
        sorted(
            n
            for n in names
            if SCRIPT_NAME.fullmatch(n) and n not in RESERVED_MODULE_NAMES
        )
    )


def imports_of(source: str) -> list[str]:
    """The module names ``source`` requires literally (the import graph's edges)."""
    return list(source_facts(source).imports)


def check_module_name(name: str) -> None:
    """Raises ModuleError if ``name`` is reserved for a library."""
    if name in RESERVED_MODULE_NAMES:
        raise ModuleError(
            f"{name!r} is a reserved name (a standard library or SDK name) and "
            "cannot be a module; choose another name"
        )


def check_module_source(name: str, source: str) -> None:
    """Check ``source`` has the module shape (SPEC.md §5).

    Raises:
        ScriptSyntaxError: the source does not compile (name, line, reason).
        ModuleShapeError: top-level code other than function definitions,
            local constants, require calls and a final return; or a source
            the parser cannot read. The message is ``"name:LINE: reason"``.
    """
    facts = source_facts(source)
    if facts.unparsable is not None:
        validate_source(name, source)  # Lua's own message if it is a syntax error
        line, reason = facts.unparsable
        raise ModuleShapeError(
            f"{name}:{line}: the module cannot be checked: {reason}", line=line
        )
    if facts.shape is not None:
        line, reason = facts.shape
        raise ModuleShapeError(f"{name}:{line}: {reason}", line=line)


def load_problem(name: str, source: str) -> str | None:
    """Why a runtime must not load module ``name`` with ``source``, or None."""
    try:
        check_module_source(name, source)
    except ScriptSyntaxError as e:
        return f"module '{name}' does not compile: {e.message}"
    except ModuleShapeError as e:
        return f"module '{name}' is not a valid module: {e.message}"
    return None
