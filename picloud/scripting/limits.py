"""The per-invocation limits of the sandbox, as one frozen value.

Defaults equal the ``PICLOUD_SCRIPT_*`` defaults of :class:`~picloud.config.Settings`
(they are read from it, so the two cannot drift); :meth:`ScriptLimits.from_settings`
takes a deployment's configured values.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from picloud.config import Settings

__all__ = ["ScriptLimits"]

Positive = Annotated[int, Meta(gt=0)]
_D = Settings()


class ScriptLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What one invocation may use; exceeding any is a ``ScriptLimitExceeded``.

    ``limit`` names on the error: ``instructions``, ``time``, ``memory``,
    ``call_depth``, ``value_bytes``, ``value_depth``, ``log_bytes``,
    ``response_bytes``.
    """

    max_instructions: Positive = _D.script_max_instructions
    """Lua VM instructions, plus C-level work charged by size (1 per 32 bytes)."""
    timeout_ms: Positive = _D.script_timeout_ms
    """Wall clock of the whole invocation, SDK awaits included."""
    hard_deadline_grace_ms: Positive = _D.script_hard_deadline_grace_ms
    """After timeout + grace a watchdog kills the process (second layer)."""
    max_memory_bytes: Positive = _D.script_max_memory_bytes
    """Lua heap growth during the invocation (the soft limit)."""
    max_call_depth: Positive = _D.script_max_call_depth
    max_value_bytes: Positive = _D.script_max_value_bytes
    """JSON size of any value crossing between Lua and Python or made by json.encode."""
    max_value_depth: Positive = _D.script_max_value_depth
    max_log_bytes: Positive = _D.script_max_log_bytes
    """Total bytes of the log messages of one invocation."""
    max_response_bytes: Positive = _D.script_max_response_bytes
    module_import_depth_max: Positive = _D.module_import_depth_max

    @classmethod
    def from_settings(cls, settings: Settings) -> ScriptLimits:
        return cls(
            max_instructions=settings.script_max_instructions,
            timeout_ms=settings.script_timeout_ms,
            hard_deadline_grace_ms=settings.script_hard_deadline_grace_ms,
            max_memory_bytes=settings.script_max_memory_bytes,
            max_call_depth=settings.script_max_call_depth,
            max_value_bytes=settings.script_max_value_bytes,
            max_value_depth=settings.script_max_value_depth,
            max_log_bytes=settings.script_max_log_bytes,
            max_response_bytes=settings.script_max_response_bytes,
            module_import_depth_max=settings.module_import_depth_max,
        )
