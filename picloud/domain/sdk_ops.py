"""The table of SDK operations: the one place that lists them.

Each :class:`SdkOp` says how scripts call it (its Lua function and argument
kinds, :mod:`picloud.scripting.sdk_spec`), the capability it needs, and the
name of the method of the actor's SDK handler that performs it. The sandbox
builds ``kv``/``docs``/``dead_letters`` from this table, access checks read
it, and the SDK reference (docs) is generated from it. Adding an operation is
one entry here and its handler method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from picloud.domain.access import Capability
from picloud.domain.names import COLLECTION
from picloud.errors import SdkCallError
from picloud.scripting.sdk_spec import (
    CollectionRule,
    OptionKind,
    SdkArg,
    SdkFunction,
    SdkSpec,
)

__all__ = [
    "SDK",
    "SDK_NEEDS",
    "SDK_OPS",
    "SdkOp",
    "check_sdk_call",
    "sdk_op",
]

C = Capability
Returns = Literal["value", "nothing", "boolean"]


@dataclass(frozen=True)
class SdkOp:
    function: SdkFunction
    needs: Capability
    handler: str
    """The method of the actor's SDK handler (actors.sdk.DataAccess) that runs it."""
    summary: str
    example: str = ""

    @property
    def name(self) -> str:
        return self.function.op


def _key(name: str = "key") -> SdkArg:
    return SdkArg(name, "string")


def _opts(*options: tuple[str, OptionKind]) -> SdkArg:
    return SdkArg("options", "options", optional=True, options=options)


_CURSOR: tuple[str, OptionKind] = ("cursor", "string")
_LIMIT: tuple[str, OptionKind] = ("limit", "integer")


def _on(
    namespace: str, name: str, *args: SdkArg, returns: Returns = "value"
) -> SdkFunction:
    """A method of a collection handle: ``kv.collection("c"):get(key)``."""
    return SdkFunction(namespace, name, args, method=True, returns=returns)


SDK_OPS: tuple[SdkOp, ...] = (
    SdkOp(
        _on("kv", "get", _key()),
        C.KV_READ,
        "kv_get",
        "The value stored at key, or nil.",
        'local n = kv.collection("visits"):get("count")',
    ),
    SdkOp(
        _on(
            "kv",
            "set",
            _key(),
            SdkArg("value", "value"),
            _opts(("ttl_ms", "integer")),
            returns="nothing",
        ),
        C.KV_WRITE,
        "kv_set",
        "Store a JSON value at key (nil is refused: use delete). With ttl_ms "
        "the key lives that many milliseconds: past it, it reads as absent at "
        "once, and a KV trigger on op expire sees its expiry (ctx.event.op = "
        '"expire", prev_value, expired_at). A set without ttl_ms keeps it forever.',
        'kv.collection("visits"):set("count", 1)\n'
        'kv.collection("sessions"):set(token, {user = id}, {ttl_ms = 1500})',
    ),
    SdkOp(
        _on("kv", "has", _key(), returns="boolean"),
        C.KV_READ,
        "kv_has",
        "Whether key holds a value.",
    ),
    SdkOp(
        _on("kv", "delete", _key()),
        C.KV_WRITE,
        "kv_delete",
        "Remove key; true if it held a value.",
    ),
    SdkOp(
        _on("kv", "list", _opts(("prefix", "string"), _CURSOR, _LIMIT)),
        C.KV_READ,
        "kv_list",
        "A page of {items = {{key =, value =}...}, cursor =} in key order.",
        'local page = kv.collection("users"):list{prefix = "a", limit = 10}',
    ),
    SdkOp(
        _on("docs", "create", SdkArg("data", "table")),
        C.DOCS_WRITE,
        "doc_create",
        "Store a new document; answers its envelope {id, data, created_at, "
        "updated_at}.",
        'local d = docs.collection("people"):create{name = "Ada", age = 36}',
    ),
    SdkOp(
        _on("docs", "get", _key("id")),
        C.DOCS_READ,
        "doc_get",
        "The envelope of document id, or nil.",
    ),
    SdkOp(
        _on("docs", "find", SdkArg("filter", "table", optional=True)),
        C.DOCS_READ,
        "doc_find",
        "The envelopes matching the query DSL filter ($eq $ne $gt $gte $lt "
        "$lte $in, $sort, $limit).",
        'docs.collection("people"):find{age = {["$gt"] = 30}, ["$sort"] = "-age"}',
    ),
    SdkOp(
        _on("docs", "find_one", SdkArg("filter", "table", optional=True)),
        C.DOCS_READ,
        "doc_find_one",
        "The first envelope matching filter, or nil.",
    ),
    SdkOp(
        _on("docs", "update", _key("id"), SdkArg("data", "table")),
        C.DOCS_WRITE,
        "doc_update",
        "Replace document id's data; answers the envelope, or nil if absent.",
    ),
    SdkOp(
        _on("docs", "delete", _key("id")),
        C.DOCS_WRITE,
        "doc_delete",
        "Remove document id; true if it existed.",
    ),
    SdkOp(
        _on("docs", "list", _opts(_CURSOR, _LIMIT)),
        C.DOCS_READ,
        "doc_list",
        "A page of envelopes in id (creation) order.",
    ),
    SdkOp(
        SdkFunction(
            "dead_letters",
            "list",
            (_opts(_CURSOR, _LIMIT, ("resolved", "boolean")),),
        ),
        C.DEAD_LETTERS_READ,
        "dead_letters_list",
        "A page of the app's dead letters, newest first.",
    ),
    SdkOp(
        SdkFunction("dead_letters", "replay", (_key("id"),)),
        C.DEAD_LETTERS_MANAGE,
        "dead_letters_replay",
        "Deliver a dead letter's event again, with fresh attempts.",
    ),
    SdkOp(
        SdkFunction("dead_letters", "resolve", (_key("id"),)),
        C.DEAD_LETTERS_MANAGE,
        "dead_letters_resolve",
        "Mark a dead letter resolved; true if it was not already.",
    ),
    SdkOp(
        SdkFunction("secrets", "get", (_key("name"),), index=True),
        C.SECRETS_READ,
        "secrets_get",
        "secrets.NAME (also ctx.secrets.NAME) is the app's secret NAME as a "
        "string, or nil. Set them with PUT /api/v1/admin/apps/{app}/secrets/NAME "
        "or picloud secrets set; the log holds them sealed (AES-GCM), and a "
        "value a run read (of 4 characters or more) is replaced by "
        "[secret NAME] in its logs and error.",
        'local r = http.fetch(url, {headers = {authorization = "Bearer " .. '
        "secrets.API_TOKEN}})",
    ),
    SdkOp(
        SdkFunction(
            "http",
            "fetch",
            (
                SdkArg("url", "string"),
                _opts(
                    ("method", "string"),
                    ("headers", "table"),
                    ("body", "any"),
                    ("timeout_ms", "integer"),
                ),
            ),
            effect=True,
        ),
        C.HTTP_FETCH,
        "http_fetch",
        "Send an HTTP(S) request; answers {status =, headers = {lower-case "
        "name = value}, body = string} (the body as UTF-8 text, an invalid "
        "byte replaced by U+FFFD). A body table is sent as JSON. Only "
        "public addresses on the app's fetch allowlist, checked after DNS and "
        "at every redirect; sizes, redirects, calls per run and time are "
        "limited (PICLOUD_FETCH_*), and every failure is a Lua error naming "
        "its cause (pcall catches it). The time counts against the run's. In "
        "an async run or a trigger, a run retried after its commit failed "
        "gets the answers its first try got (no second request).",
        'local r = http.fetch("https://api.example.com/v1/items", {\n'
        '  method = "POST", headers = {authorization = "Bearer " .. secrets.TOKEN},\n'
        '  body = {name = "x"}, timeout_ms = 2000})\n'
        'if r.status ~= 200 then error("upstream said " .. r.status) end\n'
        "local items = json.decode(r.body)",
    ),
)

_BY_NAME = {op.name: op for op in SDK_OPS}

SDK_NEEDS: dict[str, Capability] = {op.name: op.needs for op in SDK_OPS}
"""The capability each SDK operation needs."""

SDK = SdkSpec(
    functions=tuple(op.function for op in SDK_OPS),
    collection=CollectionRule(
        lua_pattern=COLLECTION.lua_pattern,
        max_length=COLLECTION.max_length,
        explained=COLLECTION.explained,
    ),
)
"""What the sandbox builds the SDK from."""


def sdk_op(name: str) -> SdkOp:
    """The operation ``name``; SdkCallError if there is none (the table is
    the allow-list)."""
    op = _BY_NAME.get(name)
    if op is None:
        raise SdkCallError(f"{name[:60]} is not an SDK operation")
    return op


def check_sdk_call(granted: frozenset[Capability], name: str) -> SdkOp:
    """The operation ``name``, if ``granted`` holds what it needs.

    Raises:
        SdkCallError: the script may not call it, or it does not exist.
    """
    op = sdk_op(name)
    if op.needs not in granted:
        raise SdkCallError(
            f"{name} needs the {op.needs.value} capability, which this "
            "script's route or trigger does not grant"
        )
    return op
