"""How an SDK function looks from Lua: its namespace, name, arguments, result.

The sandbox builds ``kv``, ``docs``, ``dead_letters``… from a list of
:class:`SdkFunction` handed to :class:`~picloud.scripting.AppRuntime`; the list
itself is the table of SDK operations (:mod:`picloud.domain.sdk_ops`), so
adding an operation adds no Lua. The Lua side checks each argument's kind
and a collection name's rule, then yields one request to the host's
:class:`~picloud.scripting.SdkHandler`, which checks the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "NO_SDK",
    "ArgKind",
    "CollectionRule",
    "OptionKind",
    "SdkArg",
    "SdkFunction",
    "SdkSpec",
]

ArgKind = Literal["string", "value", "table", "options"]
"""``string``; ``value`` (any JSON-like value but nil); ``table`` (a table,
or nil read as an empty one when ``optional``); ``options`` (a table of
named options, each checked by its :data:`OptionKind`)."""

OptionKind = Literal["string", "integer", "boolean", "table", "any"]
"""``integer`` options must be positive; ``any`` is checked by the host."""


@dataclass(frozen=True)
class SdkArg:
    name: str
    kind: ArgKind
    optional: bool = False
    options: tuple[tuple[str, OptionKind], ...] = ()


@dataclass(frozen=True)
class SdkFunction:
    namespace: str
    name: str
    args: tuple[SdkArg, ...]
    method: bool = False
    """Called on a collection handle: ``kv.collection("c"):get(key)``; the
    collection's name then goes first in the request."""
    returns: Literal["value", "nothing", "boolean"] = "value"
    effect: bool = False
    """It acts outside PiCloud (``http.fetch``): once a run made the call it
    is never stopped to be run again from the start (see the driver)."""
    index: bool = False
    """Its namespace is a read-only table whose fields call it with their
    name: ``secrets.NAME`` is ``secrets.get("NAME")``."""

    @property
    def op(self) -> str:
        """The name the host's SDK handler receives: ``kv.get``."""
        return f"{self.namespace}.{self.name}"

    def to_lua(self) -> dict[str, Any]:
        """Plain data for the Lua side (sdk.lua)."""
        return {
            "namespace": self.namespace,
            "name": self.name,
            "method": self.method,
            "returns": self.returns,
            "index": self.index,
            "args": [
                {
                    "name": a.name,
                    "kind": a.kind,
                    "optional": a.optional,
                    "options": [list(o) for o in a.options],
                }
                for a in self.args
            ],
        }


@dataclass(frozen=True)
class CollectionRule:
    """What ``kv.collection(name)`` accepts, checked before any request: the
    same rule the host applies (one rule everywhere)."""

    lua_pattern: str
    max_length: int
    explained: str

    def to_lua(self) -> dict[str, Any]:
        return {
            "pattern": self.lua_pattern,
            "max_length": self.max_length,
            "explained": self.explained,
        }


@dataclass(frozen=True)
class SdkSpec:
    """Everything the sandbox builds the SDK from."""

    functions: tuple[SdkFunction, ...]
    collection: CollectionRule

    def to_lua(self) -> dict[str, Any]:
        return {
            "functions": [f.to_lua() for f in self.functions],
            "collection": self.collection.to_lua(),
        }


NO_SDK = SdkSpec(
    functions=(),
    collection=CollectionRule(lua_pattern="^$", max_length=0, explained="no SDK"),
)
"""A sandbox with the standard library only."""
