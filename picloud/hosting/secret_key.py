"""The key that seals apps' secrets: ``PICLOUD_SECRET_KEY`` when set (a
cluster sets the same on every node), else one generated once into the data
directory, readable by its owner only (as the cluster secret is)."""

from __future__ import annotations

import os

import msgspec

from picloud.config import Settings
from picloud.domain.secret_box import new_key

__all__ = ["with_secret_key"]

_FILE = "secret.key"


def with_secret_key(settings: Settings) -> Settings:
    """``settings`` with ``secret_key`` set (see the module docstring)."""
    if settings.secret_key:
        return settings
    path = settings.data_path / _FILE
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = ""
    if not key:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = new_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
    return msgspec.structs.replace(settings, secret_key=key)
