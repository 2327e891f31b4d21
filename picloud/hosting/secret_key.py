"""The key that seals apps' secrets: ``PICLOUD_SECRET_KEY`` when set (a
cluster sets the same on every node), else one generated once into the data
directory, readable by its owner only (as the cluster secret is)."""

from __future__ import annotations

import msgspec

from picloud.config import Settings, kept_secret
from picloud.domain.secret_box import new_key

__all__ = ["with_secret_key"]


def with_secret_key(settings: Settings) -> Settings:
    """``settings`` with ``secret_key`` set (see the module docstring)."""
    if settings.secret_key:
        return settings
    key = kept_secret(settings, "secret.key", new_key)
    return msgspec.structs.replace(settings, secret_key=key)
