"""``GET /healthz``, ``GET /metrics`` and the OpenAPI document."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from picloud.domain.access import Capability
from picloud.errors import ActorUnavailable, PiCloudError, StoreUnavailable
from picloud.http._api import ENDPOINTS, endpoint, json_response
from picloud.http._openapi import openapi_document
from picloud.http.state import SERVICES
from picloud.metrics import CONTENT_TYPE, REGISTRY, exposition

_CHECK_TIMEOUT = 3.0
_HOST_METRICS_TIMEOUT = 1.0


async def _check(probe: Any) -> dict[str, Any]:
    """``probe``'s detail and latency, or why it failed: in our words, never
    a driver's (``unreachable: connection refused``)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT):
            detail = await probe
    except StoreUnavailable as e:
        return {"ok": False, "error": f"unreachable: {e.cause}"}
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {_CHECK_TIMEOUT:g}s"}
    except PiCloudError as e:
        return {"ok": False, "error": f"{e.code}: {e.message}"}
    return {
        "ok": True,
        "latency_ms": round((time.monotonic() - started) * 1000, 2),
        **detail,
    }


async def _postgres(request: web.Request) -> dict[str, Any]:
    return {"version": await request.app[SERVICES].db.server_version()}


async def _ray(request: web.Request) -> dict[str, Any]:
    services = request.app[SERVICES]
    pid = await services.control.ping(seconds=_CHECK_TIMEOUT)
    hosts = len(services.hosts.membership.names)
    if not hosts:
        raise ActorUnavailable("no app host is alive")
    return {"control_plane_pid": pid, "app_hosts": hosts}


@endpoint("GET", "/healthz", needs=None, summary="Postgres and Ray status", tag="ops")
async def healthz(request: web.Request) -> web.Response:
    postgres, ray = await asyncio.gather(
        _check(_postgres(request)), _check(_ray(request))
    )
    ok = postgres["ok"] and ray["ok"]
    body = {"status": "ok" if ok else "degraded", "postgres": postgres, "ray": ray}
    return json_response(body, 200 if ok else 503)


@endpoint(
    "GET",
    "/api/v1/openapi.json",
    needs=None,
    summary="This API's OpenAPI document",
    tag="ops",
)
async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document(ENDPOINTS.endpoints))


@endpoint(
    "GET",
    "/metrics",
    # What the instance does is read like its event log: by instance admins,
    # and their API keys with the events:read scope (a scraper's bearer token).
    needs=Capability.EVENTS_READ,
    summary="Prometheus metrics of this front door and of every live app host",
    tag="ops",
    text=True,
)
async def metrics(request: web.Request) -> web.Response:
    """Each host's snapshot, asked for now; one that does not answer within
    a second is left out of this scrape (the answer is still 200)."""
    hosts = await request.app[SERVICES].hosts.metrics(_HOST_METRICS_TIMEOUT)
    body = exposition(REGISTRY, hosts)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
