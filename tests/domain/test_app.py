"""An app's admin commands decided on its control state (pure)."""

from __future__ import annotations

import re
from datetime import timedelta

import msgspec
import pytest

from picloud.config import Settings
from picloud.domain.app import (
    decide_add_route,
    decide_admin,
    decide_delete_script,
    decide_host_kill,
    decide_remove_route,
    decide_save_script,
    importers,
    route_record,
    script_record,
)
from picloud.domain.commands import (
    AddRoute,
    DeleteScript,
    RecordHostKill,
    RemoveRoute,
    SaveScript,
)
from picloud.errors import (
    Conflict,
    InvalidInput,
    ModuleError,
    ModuleShapeError,
    NotFound,
    ScriptSyntaxError,
)
from picloud.events import utcnow
from picloud.events.app import (
    AppQuarantined,
    HostKilled,
    RouteAdded,
    RouteRemoved,
    ScriptDeleted,
    ScriptSaved,
)
from picloud.events.app_state import AppState
from picloud.events.triggers import TriggerRemoved
from tests.domain.helpers import endpoint, module, run_app, saved
from tests.events.helpers import APP, fold_app, trigger_added

KILL = RecordHostKill(host="host-0", execution_id="e1")


def app_with_scripts() -> AppState:
    """``util`` (a module) imported by ``api``; ``solo`` imports nothing."""
    return run_app(
        None,
        module("util"),
        endpoint("api", 'local u = require("util")\nreturn u'),
        endpoint("solo"),
    )


def only_saved(state: AppState, command: SaveScript) -> ScriptSaved:
    [event] = decide_save_script(state, command)
    assert isinstance(event, ScriptSaved)
    return event


# -- saving scripts ------------------------------------------------------------


def test_a_new_script_gets_version_one_and_its_literal_imports() -> None:
    event = only_saved(
        AppState(app_id=APP),
        endpoint("hello", 'local a = require("fmt")\nreturn require("util")'),
    )
    assert (event.app_id, event.name, event.kind, event.version) == (
        APP,
        "hello",
        "endpoint",
        1,
    )
    assert event.imports == ["fmt", "util"]


def test_a_replaced_script_keeps_its_id_name_and_kind_and_counts_versions() -> None:
    state = app_with_scripts()
    util = saved(state, "util")
    event = only_saved(
        state,
        SaveScript(script_id=util.id, kind="endpoint", source="return {}"),
    )
    assert (event.script_id, event.name, event.kind, event.version) == (
        util.id,
        "util",
        "module",
        2,
    )
    state = fold_app([event], state)
    assert saved(state, "util").version == 2
    again = SaveScript(script_id=util.id, name="util", source="return {}")
    assert only_saved(state, again).version == 3


@pytest.mark.parametrize("name", ["", "1abc", "has space", "x" * 65, "naïve", None])
def test_a_new_script_needs_a_valid_name(name: str | None) -> None:
    with pytest.raises(InvalidInput, match="script name"):
        decide_save_script(AppState(app_id=APP), SaveScript(name=name, source=""))


def test_script_names_are_unique_in_the_app() -> None:
    with pytest.raises(Conflict, match="solo"):
        decide_save_script(app_with_scripts(), endpoint("solo"))


def test_a_script_cannot_be_renamed_and_an_unknown_one_cannot_be_replaced() -> None:
    state = app_with_scripts()
    with pytest.raises(InvalidInput, match="renamed"):
        decide_save_script(
            state, SaveScript(script_id=saved(state, "solo").id, name="x", source="")
        )
    with pytest.raises(NotFound):
        decide_save_script(state, SaveScript(script_id="nope", source=""))


def test_a_source_over_256_kib_is_refused_before_it_is_compiled() -> None:
    limit = 256 * 1024
    assert only_saved(AppState(app_id=APP), endpoint("ok", "-" * limit)).version == 1
    with pytest.raises(InvalidInput, match="256 KiB"):
        decide_save_script(AppState(app_id=APP), endpoint("big", "-" * (limit + 1)))
    with pytest.raises(InvalidInput, match="256 KiB"):  # bytes, not characters
        decide_save_script(
            AppState(app_id=APP), endpoint("big", "é" * (limit // 2 + 1))
        )


def test_a_source_that_does_not_compile_is_refused_with_its_line() -> None:
    with pytest.raises(ScriptSyntaxError) as caught:
        decide_save_script(AppState(app_id=APP), endpoint("bad", "return 1\nreturn (("))
    assert caught.value.line == 2


def test_a_module_needs_an_unreserved_name_and_the_module_shape() -> None:
    with pytest.raises(ModuleError, match="reserved"):
        decide_save_script(AppState(app_id=APP), module("json"))
    with pytest.raises(ModuleShapeError):
        decide_save_script(AppState(app_id=APP), module("m", "print(1)\nreturn {}"))
    assert only_saved(AppState(app_id=APP), endpoint("json")).kind == "endpoint"


# -- deleting scripts ----------------------------------------------------------


def test_deleting_a_script_removes_its_routes_and_triggers_then_the_script() -> None:
    state = app_with_scripts()
    solo, api = saved(state, "solo"), saved(state, "api")
    state = run_app(
        state,
        AddRoute(script_id=solo.id, method="GET", path="/a"),
        AddRoute(script_id=api.id, method="GET", path="/b"),
    )
    state = fold_app([trigger_added("t1", solo.id), trigger_added("t2", api.id)], state)
    events = decide_delete_script(state, DeleteScript(script_id=solo.id))
    assert [type(e) for e in events] == [RouteRemoved, TriggerRemoved, ScriptDeleted]
    state = fold_app(events, state)
    assert state.script_named("solo") is None
    assert [r.script_id for r in state.routes.values()] == [api.id]
    assert set(state.triggers) == {"t2"}


def test_a_module_others_import_is_deleted_only_with_force() -> None:
    state = app_with_scripts()
    util = saved(state, "util")
    assert importers(state, util) == ["api"]
    with pytest.raises(Conflict, match="imported by api"):
        decide_delete_script(state, DeleteScript(script_id=util.id))
    [event] = decide_delete_script(state, DeleteScript(script_id=util.id, force=True))
    assert isinstance(event, ScriptDeleted)
    assert event.name == "util"


def test_a_module_nobody_imports_and_an_endpoint_are_deleted_without_force() -> None:
    state = run_app(app_with_scripts(), module("spare"))
    for name in ("spare", "api"):
        script = saved(state, name)
        assert importers(state, script) == []
        events = decide_delete_script(state, DeleteScript(script_id=script.id))
        assert isinstance(events[-1], ScriptDeleted)


def test_deleting_an_unknown_script_is_not_found() -> None:
    with pytest.raises(NotFound):
        decide_delete_script(app_with_scripts(), DeleteScript(script_id="nope"))


# -- routes --------------------------------------------------------------------


def only_route(state: AppState, command: AddRoute) -> RouteAdded:
    [event] = decide_add_route(state, command)
    assert isinstance(event, RouteAdded)
    return event


def test_a_route_is_added_with_an_upper_case_method_and_a_normalised_path() -> None:
    state = app_with_scripts()
    solo = saved(state, "solo")
    event = only_route(
        state,
        AddRoute(
            script_id=solo.id,
            method="post",
            path="/orders/{id}/",
            dispatch_mode="async",
        ),
    )
    assert (event.script_id, event.method, event.path, event.dispatch_mode) == (
        solo.id,
        "POST",
        "/orders/{id}",
        "async",
    )


@pytest.mark.parametrize("method", ["FETCH", "", "GET ", "get\x00"])
def test_a_route_method_must_be_an_http_method_we_serve(method: str) -> None:
    state = app_with_scripts()
    with pytest.raises(InvalidInput, match="method"):
        decide_add_route(
            state, AddRoute(script_id=saved(state, "solo").id, method=method, path="/")
        )


def test_routes_of_the_same_method_and_shape_clash() -> None:
    state = app_with_scripts()
    solo, api = saved(state, "solo").id, saved(state, "api").id
    state = run_app(state, AddRoute(script_id=solo, method="GET", path="/users/{id}"))
    for path in ("/users/{name}", "/users/{id}/"):
        with pytest.raises(Conflict, match=re.escape("GET /users/{id}")):
            decide_add_route(state, AddRoute(script_id=api, method="get", path=path))
    for method, path in (("POST", "/users/{id}"), ("GET", "/users/me/x")):
        assert only_route(state, AddRoute(script_id=api, method=method, path=path))


def test_a_route_cannot_target_a_module_or_an_unknown_script() -> None:
    state = app_with_scripts()
    with pytest.raises(InvalidInput, match="module"):
        decide_add_route(
            state, AddRoute(script_id=saved(state, "util").id, method="GET", path="/")
        )
    with pytest.raises(NotFound):
        decide_add_route(state, AddRoute(script_id="nope", method="GET", path="/"))


def test_a_route_path_is_checked() -> None:
    state = app_with_scripts()
    with pytest.raises(InvalidInput, match="start with /"):
        decide_add_route(
            state, AddRoute(script_id=saved(state, "solo").id, method="GET", path="x")
        )


def test_removing_a_route_needs_one_that_exists() -> None:
    state = app_with_scripts()
    state = run_app(
        state, AddRoute(script_id=saved(state, "solo").id, method="GET", path="/")
    )
    [route_id] = state.routes
    [event] = decide_remove_route(state, RemoveRoute(route_id=route_id))
    assert isinstance(event, RouteRemoved)
    assert (event.app_id, event.route_id) == (APP, route_id)
    with pytest.raises(NotFound):
        decide_remove_route(state, RemoveRoute(route_id="nope"))


# -- host kills ----------------------------------------------------------------


def killed_ago(*seconds: float) -> AppState:
    now = utcnow()
    return fold_app(
        HostKilled(
            at=now - timedelta(seconds=s), app_id=APP, host="h", execution_id="e"
        )
        for s in seconds
    )


def test_the_kill_that_reaches_the_threshold_in_the_window_quarantines() -> None:
    events = decide_host_kill(killed_ago(10), KILL, threshold=3, window_s=60)
    assert [type(e) for e in events] == [HostKilled]
    assert isinstance(events[0], HostKilled)
    assert (events[0].host, events[0].execution_id) == ("host-0", "e1")
    events = decide_host_kill(killed_ago(10, 20), KILL, threshold=3, window_s=60)
    assert [type(e) for e in events] == [HostKilled, AppQuarantined]
    assert isinstance(events[1], AppQuarantined)
    assert events[1].host_kills == 3


def test_kills_outside_the_window_do_not_count() -> None:
    events = decide_host_kill(killed_ago(10, 120, 300), KILL, threshold=3, window_s=60)
    assert [type(e) for e in events] == [HostKilled]


def test_a_quarantined_app_is_not_quarantined_again() -> None:
    state = run_app(killed_ago(1, 2), KILL)  # the third kill: the default threshold
    assert state.quarantined
    events = decide_host_kill(state, KILL, threshold=3, window_s=60)
    assert [type(e) for e in events] == [HostKilled]


def test_the_admin_dispatch_takes_the_threshold_and_window_from_settings() -> None:
    eager = Settings(host_crash_quarantine_after=1, host_crash_window_s=1)
    events = decide_admin(AppState(app_id=APP), KILL, eager)
    assert [type(e) for e in events] == [HostKilled, AppQuarantined]
    events = decide_admin(killed_ago(5), KILL, Settings(host_crash_quarantine_after=2))
    assert [type(e) for e in events] == [HostKilled, AppQuarantined]
    events = decide_admin(
        killed_ago(5),
        KILL,
        Settings(host_crash_quarantine_after=2, host_crash_window_s=1),
    )
    assert [type(e) for e in events] == [HostKilled]


# -- records -------------------------------------------------------------------


def test_a_script_record_shows_its_imports_and_who_uses_it() -> None:
    state = app_with_scripts()
    util = script_record(state, saved(state, "util"))
    api = script_record(state, saved(state, "api"))
    assert (util.app_id, util.kind, util.version, util.used_by) == (
        APP,
        "module",
        1,
        ["api"],
    )
    assert (api.imports, api.used_by) == (["util"], [])
    assert msgspec.json.decode(msgspec.json.encode(util))["name"] == "util"


def test_a_route_record_shows_the_route() -> None:
    state = app_with_scripts()
    solo = saved(state, "solo")
    state = run_app(
        state,
        AddRoute(script_id=solo.id, method="PUT", path="/x/", dispatch_mode="async"),
    )
    [route] = state.routes.values()
    record = route_record(state, route)
    assert (record.id, record.app_id, record.script_id) == (route.id, APP, solo.id)
    assert (record.method, record.path, record.dispatch_mode) == ("PUT", "/x", "async")
