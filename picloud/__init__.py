"""PiCloud: self-hosted serverless Lua scripting on an event-sourced actor system."""

from __future__ import annotations

__version__ = "0.1.0"
