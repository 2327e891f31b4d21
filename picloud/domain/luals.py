"""The LuaLS definitions of what scripts see (docs/picloud.d.lua), so editors
complete and check ``ctx``, ``kv``, ``docs``, the standard library…

The SDK part is rendered from the table of SDK operations; the context and
the standard library are declared here, beside the SDK they sit with. A test
fails when the committed file differs from this rendering
(``python -m picloud.domain.luals > docs/picloud.d.lua`` renews it).
"""

from __future__ import annotations

import sys

from picloud.domain.sdk_ops import SDK_OPS, SdkOp
from picloud.scripting.sdk_spec import SdkArg

__all__ = ["render_luals"]

_CONTEXT = """\
---@meta
-- PiCloud scripts: LuaLS definitions. Generated; do not edit
-- (python -m picloud.domain.luals > docs/picloud.d.lua).

---@class picloud.Request
---@field method string
---@field path string the path inside the app (/things/42)
---@field params table<string, string> route {parameters}
---@field query table<string, string> the first value of each query parameter
---@field headers table<string, string> lower-case names, no PiCloud credential
---@field body string
local Request = {}
---@return any value the body decoded as JSON
function Request:json() end

---@class picloud.App
---@field id string
---@field slug string
---@field name string

---@class picloud.Context
---@field execution_id string
---@field app picloud.App
---@field secrets table<string, string?> the app's secrets (as the global secrets)
---@field attempt integer 1 for a delivery's first run, 2 for its first retry…
--- (always 1 for a sync route)
---@field request? picloud.Request set for a route's run
---@field event? table a trigger's event: source, op, collection, key or id,
--- value or data, prev_value or prev_data
---@type picloud.Context
ctx = {}

---@class picloud.Envelope
---@field id string
---@field data table
---@field created_at string RFC 3339, UTC
---@field updated_at string RFC 3339, UTC

---@class picloud.FetchAnswer
---@field status integer
---@field headers table<string, string> lower-case names
---@field body string

---@class picloud.Page
---@field items table[]
---@field cursor? string pass it back for the next page; nil at the end
"""

_STDLIB = """\
json = {}
---@param value any
---@return string
function json.encode(value) end
---@param text string
---@return any
function json.decode(text) end
---@param t? table
---@return table t marked to encode as a JSON array, even empty
function json.array(t) end
---@param t? table
---@return table t marked to encode as a JSON object, even empty
function json.object(t) end
---@type any the JSON null of the running invocation
json.null = nil

base64 = {}
---@param s string
---@return string
function base64.encode(s) end
---@param s string
---@return string
function base64.decode(s) end
---@param s string
---@return string
function base64.url_encode(s) end
---@param s string
---@return string
function base64.url_decode(s) end

hex = {}
---@param s string
---@return string
function hex.encode(s) end
---@param s string
---@return string
function hex.decode(s) end

url = {}
---@param s string
---@return string
function url.encode(s) end
---@param s string
---@return string
function url.decode(s) end
---@param s string
---@return table parts scheme, host, port, path, query, fragment…
function url.parse(s) end
---@param s string
---@return table<string, string>
function url.parse_query(s) end
---@param t table<string, any>
---@return string
function url.build_query(t) end

-- Regular expressions (RE2 syntax, linear time: safe on hostile input).
regex = {}
---@param pattern string
---@param subject string
---@param init? integer
---@return table? groups
function regex.match(pattern, subject, init) end
---@param pattern string
---@param subject string
---@param init? integer
---@return integer? first, integer? last
function regex.find(pattern, subject, init) end
---@param pattern string
---@param subject string
---@param limit? integer
---@return table matches
function regex.find_all(pattern, subject, limit) end
---@param pattern string
---@param subject string
---@param repl string
---@param count? integer
---@return string text, integer replaced
function regex.replace(pattern, subject, repl, count) end
---@param pattern string
---@param subject string
---@param max? integer
---@return string[]
function regex.split(pattern, subject, max) end

-- Two views of one clock: time.now() is text (to show or store), time.unix()
-- a number (for arithmetic); time.parse(time.now()) equals time.unix() to the
-- millisecond. Subtract numbers, never the strings: time.unix() - started,
-- or time.parse(ctx.event.scheduled_at) for a time some event gives as text.
time = {}
---@return string now RFC 3339 in UTC, milliseconds (2026-01-02T03:04:05.678Z)
function time.now() end
---@return number seconds since the Unix epoch (with a fraction): do arithmetic on these
function time.unix() end
---@param t? number unix seconds (default: now)
---@param fmt? string strftime format (default: RFC 3339)
---@return string
function time.format(t, fmt) end
---@param text string RFC 3339 / ISO 8601
---@return number unix seconds
function time.parse(text) end

random = {}
---@param m? integer
---@param n? integer
---@return integer
function random.int(m, n) end
---@return number in [0, 1)
function random.float() end
---@return string a version 4 UUID
function random.uuid() end
---@param n integer
---@return string n random bytes
function random.bytes(n) end

log = {}
---@param ... any
function log.debug(...) end
---@param ... any
function log.info(...) end
---@param ... any
function log.warn(...) end
---@param ... any
function log.error(...) end
"""

_TYPES = {
    "string": "string",
    "value": "any",
    "table": "table",
    "options": "table",
}
_RETURNS = {
    "kv.get": "any",
    "kv.has": "boolean",
    "kv.delete": "boolean",
    "kv.list": "picloud.Page",
    "docs.create": "picloud.Envelope",
    "docs.get": "picloud.Envelope?",
    "docs.find": "picloud.Envelope[]",
    "docs.find_one": "picloud.Envelope?",
    "docs.update": "picloud.Envelope?",
    "docs.delete": "boolean",
    "docs.list": "picloud.Page",
    "dead_letters.list": "picloud.Page",
    "dead_letters.replay": "boolean",
    "dead_letters.resolve": "boolean",
    "http.fetch": "picloud.FetchAnswer",
}


def _param(arg: SdkArg) -> str:
    kind = _TYPES[arg.kind]
    if arg.options:
        kind = "{" + ", ".join(f"{k}?: {t}" for k, t in arg.options) + "}"
    optional = "?" if arg.optional else ""
    return f"---@param {arg.name}{optional} {kind}"


def _function(op: SdkOp, owner: str) -> list[str]:
    fn = op.function
    lines = [f"--- {op.summary}", *(_param(a) for a in fn.args)]
    if fn.returns != "nothing":
        lines.append(f"---@return {_RETURNS.get(op.name, 'any')}")
    separator = ":" if fn.method else "."
    names = ", ".join(a.name for a in fn.args)
    lines.append(f"function {owner}{separator}{fn.name}({names}) end")
    return lines


def render_luals() -> str:
    out = [_CONTEXT]
    namespaces: dict[str, list[SdkOp]] = {}
    for op in SDK_OPS:
        namespaces.setdefault(op.function.namespace, []).append(op)
    for namespace, ops in namespaces.items():
        if any(op.function.index for op in ops):
            out += [
                f"--- {ops[0].summary}",
                "---@type table<string, string?>",
                f"{namespace} = {{}}",
                "",
            ]
            continue
        collection = f"picloud.{namespace.title().replace('_', '')}Collection"
        out.append(f"{namespace} = {{}}")
        if any(op.function.method for op in ops):
            out += [
                f"---@class {collection}",
                "local Collection = {}",
                "---@param name string",
                f"---@return {collection}",
                f"function {namespace}.collection(name) end",
            ]
        for op in ops:
            out += _function(op, "Collection" if op.function.method else namespace)
        out.append("")
    out.append(_STDLIB)
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render_luals())
