"""Admin API: the app hosts alive now, over every node of the cluster."""

from __future__ import annotations

import msgspec
from aiohttp import web

from picloud.domain.access import Capability
from picloud.domain.records import HostRecord
from picloud.http._api import endpoint
from picloud.http.state import SERVICES

__all__ = ["HostList"]


class HostList(msgspec.Struct, frozen=True):
    items: list[HostRecord]


@endpoint(
    "GET",
    "/api/v1/admin/hosts",
    # What runs the instance is read like the instance's own event log: by
    # instance admins, and keys of theirs with the events:read scope.
    needs=Capability.EVENTS_READ,
    summary="The live app hosts of every node, with their active apps",
    answer=HostList,
)
async def list_hosts(request: web.Request) -> HostList:
    return HostList(items=await request.app[SERVICES].hosts.describe())
