"""The cluster secret: what a front door proves to an app host (the channel).

Hosts are detached Ray actors that outlive a front door, so the secret must
be the same at every start: ``PICLOUD_CLUSTER_SECRET`` when set (a cluster
sets it on every node), else one generated once into the data directory,
readable by its owner only.
"""

from __future__ import annotations

import secrets

import msgspec

from picloud.config import Settings, kept_secret

__all__ = ["with_cluster_secret"]


def with_cluster_secret(settings: Settings) -> Settings:
    """``settings`` with ``cluster_secret`` set (see the module docstring)."""
    if settings.cluster_secret:
        return settings
    secret = kept_secret(settings, "cluster.secret", lambda: secrets.token_urlsafe(32))
    return msgspec.structs.replace(settings, cluster_secret=secret)
