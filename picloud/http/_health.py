"""``GET /healthz`` and the OpenAPI document."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from picloud.errors import ActorUnavailable, PiCloudError, StoreUnavailable
from picloud.http._api import ENDPOINTS, endpoint, json_response
from picloud.http._openapi import openapi_document
from picloud.http.state import SERVICES

_CHECK_TIMEOUT = 3.0


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
