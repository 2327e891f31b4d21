"""Commands to an app's actor: imperatives (``SaveScript``), each with an
idempotency key so a retry after a lost reply changes nothing twice.

They are what the front door, the scheduler and the actor itself send to an
app; :mod:`picloud.actors.protocol` carries them over the wire.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from picloud.events.app import (
    CorsPolicy,
    DispatchMode,
    RequestRecord,
    RetryPolicy,
    ScriptKind,
)

__all__ = [
    "MAX_DEPLOY_ITEMS",
    "AddRoute",
    "AddTrigger",
    "Command",
    "DataOp",
    "Deactivate",
    "DeleteScript",
    "Deliver",
    "Deploy",
    "DesiredApp",
    "DesiredRoute",
    "DesiredScript",
    "DesiredTrigger",
    "Expire",
    "ExpireKeys",
    "FireSchedules",
    "Invoke",
    "MarkAbandoned",
    "RecordHostKill",
    "RemoveRoute",
    "RemoveTrigger",
    "ReplayDeadLetter",
    "ResolveDeadLetter",
    "SaveScript",
    "SetCors",
    "SetFetchHosts",
    "Settle",
    "Wake",
    "WhatIf",
]


class _Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="command"):
    idempotency_key: str | None = None
    actor: str | None = None
    """The principal on whose behalf the command runs (for event metadata)."""


class Invoke(_Command, frozen=True, kw_only=True, tag="invoke"):
    """Run a route's script for an HTTP request."""

    execution_id: str
    route_id: str
    request: RequestRecord
    correlation_id: str | None = None


class SaveScript(_Command, frozen=True, kw_only=True, tag="save_script"):
    """Create a script (``script_id`` None) or replace one's source."""

    name: str | None = None
    kind: ScriptKind = "endpoint"
    source: str
    script_id: str | None = None


class DeleteScript(_Command, frozen=True, kw_only=True, tag="delete_script"):
    script_id: str
    force: bool = False
    """Delete a module even though other scripts import it."""


class AddRoute(_Command, frozen=True, kw_only=True, tag="add_route"):
    script_id: str
    method: str
    path: str
    dispatch_mode: DispatchMode = "sync"
    capabilities: list[str] | None = None
    retry: RetryPolicy | None = None


class RemoveRoute(_Command, frozen=True, kw_only=True, tag="remove_route"):
    route_id: str


class DataOp(_Command, frozen=True, kw_only=True, tag="data_op"):
    """An admin read-write of the app's KV or documents: an SDK ``op`` with its
    ``args``, run with the same semantics as from a script."""

    op: str
    args: list[Any]


class MarkAbandoned(_Command, frozen=True, kw_only=True, tag="mark_abandoned"):
    """The caller of a sync request gave up waiting (the front door answered 504)."""

    execution_id: str


class Deliver(_Command, frozen=True, kw_only=True, tag="deliver"):
    """Run a pending delivery (internal: the actor queues it for itself)."""

    delivery_id: str


class ExpireKeys(_Command, frozen=True, kw_only=True, tag="expire_keys"):
    """Record the KV entries whose TTL ran out as expired (internal: the actor
    sends it to itself when the first TTL comes)."""


class FireSchedules(_Command, frozen=True, kw_only=True, tag="fire_schedules"):
    """Record the firings of the schedules whose time came (internal: the
    actor sends it to itself on its timer, and when it wakes)."""


class Wake(_Command, frozen=True, kw_only=True, tag="wake"):
    """Activate the app so it runs its due deliveries (from the scheduler)."""


class AddTrigger(_Command, frozen=True, kw_only=True, tag="add_trigger"):
    kind: str
    script_id: str
    ops: list[str] = []
    collection: str | None = None
    capabilities: list[str] | None = None
    retry: RetryPolicy | None = None
    cron: str | None = None
    timezone: str | None = None


class RemoveTrigger(_Command, frozen=True, kw_only=True, tag="remove_trigger"):
    trigger_id: str


class ReplayDeadLetter(_Command, frozen=True, kw_only=True, tag="replay_dead_letter"):
    dead_letter_id: str


class ResolveDeadLetter(_Command, frozen=True, kw_only=True, tag="resolve_dead_letter"):
    dead_letter_id: str


class Expire(_Command, frozen=True, kw_only=True, tag="expire"):
    """The retention sweep: forget these dead letters and abandoned executions."""

    dead_letters: list[str] = []
    abandoned: list[str] = []


class RecordHostKill(_Command, frozen=True, kw_only=True, tag="record_host_kill"):
    """The app's script made the watchdog kill ``host`` (reported after restart)."""

    host: str
    execution_id: str


class SetCors(_Command, frozen=True, kw_only=True, tag="set_cors"):
    """Replace the app's CORS policy (None: no cross-origin access)."""

    cors: CorsPolicy | None = None


class SetFetchHosts(_Command, frozen=True, kw_only=True, tag="set_fetch_hosts"):
    """Replace the hosts ``http.fetch`` may reach (None: the deployment's)."""

    hosts: list[str] | None = None


class WhatIf(_Command, frozen=True, kw_only=True, tag="what_if"):
    """Run the invocations of ``script_id`` recorded from position
    ``from_position`` to ``to_position`` (inclusive) again with ``source``,
    in a dry run: nothing is appended. Runs beside the actor's queue."""

    script_id: str
    source: str
    from_position: int
    to_position: int


class Deactivate(_Command, frozen=True, kw_only=True, tag="deactivate"):
    """Passivate the app now (it was deleted or moved to another host)."""


class Settle(_Command, frozen=True, kw_only=True, tag="settle"):
    """Answer once every event the app decided so far is durable, the
    execution records of read-only runs included (before the execution log
    is read: it then lists every run that answered). An app that is not
    active has nothing pending: its host answers at once, activating nothing."""


# -- deploying a folder: the app as it should be (domain.deploy) -------------------

MAX_DEPLOY_ITEMS = 500
_Many = msgspec.Meta(max_length=MAX_DEPLOY_ITEMS)


class _Desired(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class DesiredScript(_Desired, frozen=True, kw_only=True):
    name: str
    kind: ScriptKind = "endpoint"
    source: str


class DesiredRoute(_Desired, frozen=True, kw_only=True):
    method: str
    path: str
    script: str
    """The script's name."""
    dispatch_mode: DispatchMode = "sync"
    capabilities: list[str] | None = None
    retry: RetryPolicy | None = None
    """Of an async route's deliveries."""


class DesiredTrigger(_Desired, frozen=True, kw_only=True):
    kind: str
    script: str
    ops: list[str] = []
    collection: str | None = None
    capabilities: list[str] | None = None
    retry: RetryPolicy | None = None
    cron: str | None = None
    """Of a schedule trigger, with its ``timezone``."""
    timezone: str | None = None


class DesiredApp(_Desired, frozen=True, kw_only=True):
    scripts: Annotated[list[DesiredScript], _Many] = []
    routes: Annotated[list[DesiredRoute], _Many] = []
    triggers: Annotated[list[DesiredTrigger], _Many] = []
    cors: CorsPolicy | msgspec.UnsetType | None = msgspec.UNSET
    """The app's CORS policy (None: none); left out: left as it is."""
    prune: bool = True
    """Remove what the app has and the folder does not."""


class Deploy(_Command, frozen=True, kw_only=True, tag="deploy"):
    """Make the app's scripts, routes and triggers ``desired``, in one batch
    (with ``dry_run``: only say what that would change)."""

    desired: DesiredApp
    dry_run: bool = False


Command = (
    Invoke
    | SaveScript
    | DeleteScript
    | AddRoute
    | RemoveRoute
    | DataOp
    | MarkAbandoned
    | Deliver
    | FireSchedules
    | ExpireKeys
    | Wake
    | AddTrigger
    | RemoveTrigger
    | ReplayDeadLetter
    | ResolveDeadLetter
    | Expire
    | RecordHostKill
    | SetCors
    | SetFetchHosts
    | Deactivate
    | Settle
    | WhatIf
    | Deploy
)
