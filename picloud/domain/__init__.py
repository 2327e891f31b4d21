"""Pure decisions: commands, deciders (app, triggers, identity, system), the
delivery policy, access rules, names, API records, and the table of SDK
operations. No I/O: nothing here imports asyncpg, Ray or aiohttp.

The modules are the face; import what you need from them (importing this
package imports none of them, so a names check does not load Lua).
"""

from __future__ import annotations

__all__ = [
    "access",
    "app",
    "commands",
    "credentials",
    "dead_letters",
    "delivery_policy",
    "identity",
    "names",
    "paging",
    "records",
    "sdk_args",
    "sdk_ops",
    "system",
    "triggers",
    "values",
]
