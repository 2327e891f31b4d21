"""Pure decisions on trigger commands (SPEC.md §4)."""

from __future__ import annotations

import uuid
from datetime import datetime

from picloud.domain.access import script_capabilities
from picloud.domain.commands import AddTrigger, RemoveTrigger
from picloud.domain.names import check_collection
from picloud.domain.records import TriggerRecord
from picloud.errors import InvalidInput, NotFound
from picloud.events import Event, utcnow
from picloud.events.app_state import AppState
from picloud.events.pending import TriggerInfo
from picloud.events.triggers import TriggerAdded, TriggerRemoved

__all__ = ["OPS", "decide_add_trigger", "decide_remove_trigger", "trigger_record"]

OPS = {
    "kv": ("set", "delete"),
    "docs": ("create", "update", "delete"),
    "dead_letter": (),
}


def decide_add_trigger(state: AppState, command: AddTrigger) -> list[Event]:
    script = state.scripts.get(command.script_id)
    if script is None:
        raise NotFound(f"no script {command.script_id[:80]!r} in this app")
    if script.kind == "module":
        raise InvalidInput(
            f"script {script.name!r} is a module; triggers can only run endpoints"
        )
    allowed = OPS[command.kind]
    unknown = sorted(set(command.ops) - set(allowed))
    if unknown:
        known = ", ".join(allowed) or "none: a dead-letter trigger takes no ops"
        raise InvalidInput(
            f"unknown op {unknown[0]!r} for a {command.kind} trigger ({known})"
        )
    if command.collection is not None:
        if command.kind == "dead_letter":
            raise InvalidInput("a dead-letter trigger takes no collection")
        check_collection(command.collection)
    script_capabilities(command.capabilities)  # refuse a bad grant now, not at run time
    return [
        TriggerAdded(
            at=utcnow(),
            app_id=state.app_id,
            trigger_id=str(uuid.uuid4()),
            kind=command.kind,
            script_id=script.id,
            ops=sorted(set(command.ops)),
            collection=command.collection,
            capabilities=command.capabilities,
        )
    ]


def decide_remove_trigger(state: AppState, command: RemoveTrigger) -> list[Event]:
    if command.trigger_id not in state.triggers:
        raise NotFound(f"no trigger {command.trigger_id[:80]!r} in this app")
    return [
        TriggerRemoved(at=utcnow(), app_id=state.app_id, trigger_id=command.trigger_id)
    ]


def trigger_record(
    state: AppState, trigger: TriggerInfo, created_at: datetime
) -> TriggerRecord:
    return TriggerRecord(
        id=trigger.id,
        app_id=state.app_id,
        kind=trigger.kind,
        script_id=trigger.script_id,
        ops=sorted(trigger.ops),
        collection=trigger.collection,
        capabilities=None
        if trigger.capabilities is None
        else list(trigger.capabilities),
        created_at=created_at,
    )
