"""Admin API: an app's secrets. The value is sealed here, as it arrives
(:mod:`picloud.domain.secret_box`), and only its ciphertext goes on to the
ControlPlane and the log; no answer ever carries a value."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from picloud.domain.access import Capability
from picloud.domain.names import SECRET_NAME
from picloud.domain.records import SecretRecord
from picloud.domain.secret_box import SecretBox
from picloud.domain.secrets import MAX_SECRET_BYTES, DeleteSecret, SetSecret
from picloud.http._admin_apps import app_or_404
from picloud.http._api import endpoint
from picloud.http.state import SERVICES, command_meta

__all__ = ["SecretBody", "SecretList", "set_secret"]


class SecretBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    value: Annotated[str, msgspec.Meta(max_length=MAX_SECRET_BYTES)]


class SecretList(msgspec.Struct, frozen=True):
    items: list[SecretRecord]


def _name(request: web.Request) -> str:
    return SECRET_NAME.check(request.match_info["name"])


@endpoint(
    "PUT",
    "/api/v1/admin/apps/{app}/secrets/{name}",
    needs=Capability.SCRIPT_WRITE,
    summary="Set a secret {value}; scripts read it as secrets.NAME (the answer "
    "never holds it)",
    answer=SecretRecord,
)
async def put_secret(request: web.Request, body: SecretBody) -> Any:
    app = await app_or_404(request)
    return await set_secret(request, app.id, request.match_info["name"], body)


async def set_secret(
    request: web.Request, app_id: str, name: str, body: SecretBody
) -> SecretRecord:
    """Seal ``body.value`` and set it as secret ``name`` (checked) of the app;
    the dashboard's form does this too, its name a field of the form."""
    name = SECRET_NAME.check(name)
    services = request.app[SERVICES]
    box = SecretBox(services.settings.secret_key)
    command = SetSecret(
        app=app_id,
        name=name,
        ciphertext=box.seal(app_id, name, body.value),
        key_id=box.key_id,
    )
    return await services.control.execute_as(
        SecretRecord, command, command_meta(request)
    )


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/secrets",
    needs=Capability.SCRIPT_READ,
    summary="The app's secrets: names and times, never values",
    answer=SecretList,
)
async def list_secrets(request: web.Request) -> SecretList:
    app = await app_or_404(request)
    return SecretList(items=await request.app[SERVICES].store.secrets(app.id))


@endpoint(
    "DELETE",
    "/api/v1/admin/apps/{app}/secrets/{name}",
    needs=Capability.SCRIPT_WRITE,
    summary="Delete a secret",
    status=204,
)
async def delete_secret(request: web.Request) -> None:
    app = await app_or_404(request)
    command = DeleteSecret(app=app.id, name=_name(request))
    await request.app[SERVICES].control.execute(command, command_meta(request))
