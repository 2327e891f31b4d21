"""Pure decisions on trigger commands (SPEC.md §4)."""

from __future__ import annotations

import uuid
from datetime import datetime

from picloud.config import Settings
from picloud.domain.access import script_capabilities
from picloud.domain.commands import AddTrigger, RemoveTrigger
from picloud.domain.delivery_policy import check_retry
from picloud.domain.names import check_collection
from picloud.domain.records import TriggerRecord
from picloud.domain.schedules import check_schedule, next_time
from picloud.errors import InvalidInput, NotFound
from picloud.events import Event, utcnow
from picloud.events.app_state import AppState
from picloud.events.pending import TriggerInfo
from picloud.events.trigger_kinds import TRIGGER_KINDS, trigger_kind
from picloud.events.triggers import TriggerAdded, TriggerRemoved

DEFAULTS = Settings()

__all__ = ["decide_add_trigger", "decide_remove_trigger", "trigger_record"]


def decide_add_trigger(
    state: AppState, command: AddTrigger, settings: Settings = DEFAULTS
) -> list[Event]:
    script = state.scripts.get(command.script_id)
    if script is None:
        raise NotFound(f"no script {command.script_id[:80]!r} in this app")
    if script.kind == "module":
        raise InvalidInput(
            f"script {script.name!r} is a module; triggers can only run endpoints"
        )
    kind = trigger_kind(command.kind)
    if kind is None:
        known = ", ".join(TRIGGER_KINDS)
        raise InvalidInput(f"unknown trigger kind {command.kind[:40]!r} ({known})")
    unknown = sorted(set(command.ops) - set(kind.ops))
    if unknown:
        known = ", ".join(kind.ops) or f"none: a {kind.name} trigger takes no ops"
        raise InvalidInput(
            f"unknown op {unknown[0]!r} for a {kind.name} trigger ({known})"
        )
    if command.collection is not None:
        if not kind.takes_collection:
            raise InvalidInput(f"a {kind.name} trigger takes no collection")
        check_collection(command.collection)
    if kind.takes_schedule:
        check_schedule(command.cron, command.timezone)
    elif command.cron is not None or command.timezone is not None:
        raise InvalidInput(f"a {kind.name} trigger takes no cron or timezone")
    script_capabilities(command.capabilities)  # refuse a bad grant now, not at run time
    check_retry(command.retry, settings)
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
            retry=command.retry,
            cron=command.cron,
            timezone=command.timezone,
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
        retry=trigger.retry,
        created_at=created_at,
        cron=trigger.cron,
        timezone=trigger.timezone,
        last_fired_at=trigger.last_fired,
        next_fire_at=next_time(trigger) if trigger.cron else None,
    )
