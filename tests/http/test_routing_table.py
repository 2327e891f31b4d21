"""The front door's routing table as the log's events make it: static routes
found by one lookup, and the same precedence as the scan of every route."""

from __future__ import annotations

from picloud.events.app import RouteAdded, RouteRemoved
from picloud.events.system import AppCreated
from picloud.http.routing import Match, NoRoute, Routing
from tests.events.helpers import APP, AT, recorded


def _route(route_id: str, method: str, path: str) -> RouteAdded:
    return RouteAdded(
        at=AT, app_id=APP, route_id=route_id, script_id="s", method=method, path=path
    )


def _table(*routes: RouteAdded) -> Routing:
    routing = Routing()
    events = [AppCreated(at=AT, app_id=APP, slug="shop", name="Shop"), *routes]
    routing.apply(recorded(e, n) for n, e in enumerate(events, 1))
    return routing


def _route_of(routing: Routing, method: str, path: str) -> str:
    found = routing.resolve("shop", method, path)
    assert isinstance(found, Match), found
    return found.route_id


def test_a_static_route_wins_over_parameters_and_a_catch_all() -> None:
    routing = _table(
        _route("rest", "GET", "/items/{path*}"),
        _route("param", "GET", "/items/{id}"),
        _route("static", "GET", "/items/new"),
    )
    assert _route_of(routing, "GET", "/items/new") == "static"
    assert _route_of(routing, "GET", "/items/new/") == "static"
    assert _route_of(routing, "GET", "/items/7") == "param"
    assert _route_of(routing, "GET", "/items/7/parts") == "rest"
    found = routing.resolve("shop", "GET", "/items/new")
    assert isinstance(found, Match)
    assert (found.params, found.pattern) == ({}, "/items/new")


def test_a_removed_static_route_leaves_the_others() -> None:
    routing = _table(
        _route("param", "GET", "/items/{id}"), _route("s", "GET", "/items/new")
    )
    routing.apply([recorded(RouteRemoved(at=AT, app_id=APP, route_id="s"), 9)])
    assert _route_of(routing, "GET", "/items/new") == "param"


def test_another_method_on_a_static_path_is_405_with_what_is_allowed() -> None:
    routing = _table(_route("get", "GET", "/hello"), _route("put", "PUT", "/hello"))
    found = routing.resolve("shop", "POST", "/hello")
    assert isinstance(found, NoRoute)
    assert found.allowed == ("GET", "HEAD", "PUT")
    assert _route_of(routing, "PUT", "/hello") == "put"
    head = routing.resolve("shop", "HEAD", "/hello")
    assert isinstance(head, Match)
    assert (head.route_id, head.head) == ("get", True)
