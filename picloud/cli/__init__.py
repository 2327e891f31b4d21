"""The ``picloud`` command: serve, migrate and admin (``picloud --help``)."""

from __future__ import annotations

from picloud.cli._main import main

__all__ = ["main"]
