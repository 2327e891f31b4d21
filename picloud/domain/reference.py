"""The scripting reference (docs/sdk-reference.md), rendered from the tables.

The SDK operations (:mod:`picloud.domain.sdk_ops`), the trigger kinds
(:mod:`picloud.events.trigger_kinds`) and the name rules
(:mod:`picloud.domain.names`) are the truth; the committed document is this
rendering of them, and a test fails when the two differ
(``python -m picloud.domain.reference > docs/sdk-reference.md`` renews it).
"""

from __future__ import annotations

import sys

from picloud.domain.names import COLLECTION
from picloud.domain.sdk_ops import SDK_OPS, SdkOp
from picloud.events.trigger_kinds import TRIGGER_KINDS

__all__ = ["render_reference"]

_HEADER = """\
# Scripting reference: the SDK and the triggers

Generated from PiCloud's tables of SDK operations and trigger kinds; do not
edit by hand (`python -m picloud.domain.reference > docs/sdk-reference.md`).

Every operation acts on the app the script runs in: no argument names an app.
A collection name is {collection}.
A call that breaks a rule fails with a Lua error naming the operation and
the problem (`kv.get: key must be a string, got number`), which `pcall` can
catch. Writes are buffered and committed together when the run succeeds.
"""


def _signature(op: SdkOp) -> str:
    fn = op.function
    args = ", ".join(f"[{a.name}]" if a.optional else a.name for a in fn.args)
    if fn.method:
        return f'{fn.namespace}.collection("name"):{fn.name}({args})'
    if fn.index:
        return f"{fn.namespace}.NAME"
    return f"{fn.namespace}.{fn.name}({args})"


def _arguments(op: SdkOp) -> list[str]:
    lines = []
    for arg in op.function.args:
        kind = {
            "string": "a string",
            "value": "any JSON value but nil",
            "table": "a table" + (" (nil: {})" if arg.optional else ""),
            "options": "a table of options",
        }[arg.kind]
        if arg.options:
            kind += ": " + ", ".join(f"`{k}` ({t})" for k, t in arg.options)
        lines.append(f"- `{arg.name}`: {kind}")
    return lines


_TIME = """\
## Time

`time.now()` and `time.unix()` read one clock, in two forms:

- `time.unix()`: seconds since the Unix epoch, a number with a fraction.
  Compute with it: `time.unix() - started`, deadlines, TTLs.
- `time.now()`: the same instant as RFC 3339 text in UTC, to the
  millisecond (`2026-01-02T03:04:05.678Z`). Show or store it.
- `time.parse(text)`: the number of an RFC 3339 / ISO 8601 text, to compute
  with a time given as text (`ctx.event.scheduled_at`, a `created_at`).
- `time.format([t], [strftime])`: the text of a number (default now, RFC 3339).

`time.parse(time.now())` equals `time.unix()` to the millisecond. Lua does
no arithmetic on the text of `time.now()`: subtract numbers.

```lua
local started = time.unix()
local elapsed_ms = (time.unix() - started) * 1000
local late_s = time.unix() - time.parse(ctx.event.scheduled_at)
```
"""


def render_reference() -> str:
    parts = [_HEADER.format(collection=COLLECTION.explained.removeprefix("use "))]
    namespace = ""
    for op in SDK_OPS:
        if op.function.namespace != namespace:
            namespace = op.function.namespace
            parts.append(f"## `{namespace}`\n")
        parts.append(f"### `{_signature(op)}`\n")
        parts.append(op.summary + "\n")
        if op.function.args and not op.function.index:
            parts.append("\n".join(_arguments(op)) + "\n")
        parts.append(f"Needs the `{op.needs.value}` capability.\n")
        if op.example:
            parts.append(f"```lua\n{op.example}\n```\n")
    parts.append(_TIME)
    parts.append("## Triggers\n")
    parts.append(
        "A trigger runs an endpoint script after a committed event of its "
        "kind (`POST /api/v1/admin/apps/{app}/triggers/{kind}` with "
        "`{script_id, ops?, collection?, capabilities?, retry?}`; a schedule "
        "takes `{script_id, cron, timezone?, capabilities?, retry?}`); the "
        "script gets it as `ctx.event`, and `ctx.attempt` counts its runs "
        "(1, then 2 for the first retry…). `retry` = `{max_attempts, base_ms, "
        "max_ms, jitter}`, each field over the deployment's default.\n"
    )
    for kind in TRIGGER_KINDS.values():
        ops = ", ".join(f"`{o}`" for o in kind.ops) or "none"
        collection = "yes" if kind.takes_collection else "no"
        parts.append(f"### `{kind.name}`\n")
        parts.append(f"{kind.summary}. Ops: {ops}. Collection filter: {collection}.\n")
    return "\n".join(p for p in parts if p)


if __name__ == "__main__":
    sys.stdout.write(render_reference())
