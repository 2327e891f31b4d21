"""The cluster secret: what a front door proves to an app host (the channel).

Hosts are detached Ray actors that outlive a front door, so the secret must
be the same at every start: ``PICLOUD_CLUSTER_SECRET`` when set (a cluster
sets it on every node), else one generated once into the data directory,
readable by its owner only.
"""

from __future__ import annotations

import os
import secrets

import msgspec

from picloud.config import Settings

__all__ = ["with_cluster_secret"]

_FILE = "cluster.secret"


def with_cluster_secret(settings: Settings) -> Settings:
    """``settings`` with ``cluster_secret`` set (see the module docstring)."""
    if settings.cluster_secret:
        return settings
    path = settings.data_path / _FILE
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        secret = ""
    if not secret:
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
    return msgspec.structs.replace(settings, cluster_secret=secret)
