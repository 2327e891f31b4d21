"""The front door's routing table: (app slug, method, path) → route, kept current
from the log.

It starts from the projections, read in one snapshot together with that
snapshot's oldest running transaction, then follows the global order from
there. Events that the snapshot already showed may be read again; applying
them is idempotent, and a route of an app that is gone is ignored, so the
table converges on the log. ``caught_up`` lets a writer wait until its own
event is in the table (read-your-writes for the admin API).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from picloud.errors import StoreUnavailable
from picloud.events import AppCreated, AppDeleted, AppUpdated, RecordedEvent
from picloud.events.app import (
    AppQuarantined,
    CorsPolicy,
    CorsSet,
    RouteAdded,
    RouteRemoved,
)
from picloud.events.topics import ROUTING_EVENT_TYPES
from picloud.store import Cursor, Database, EventLog

__all__ = ["ROUTING_TYPES", "Match", "Routing"]

log = logging.getLogger(__name__)

ROUTING_TYPES = sorted(ROUTING_EVENT_TYPES)


_STATIC = 2  # a route's rank: see _rank


def _rank(segments: tuple[str, ...]) -> int:
    """Which of the routes a path matches wins: a static one, then one with
    parameters, then one that ends in a catch-all ``{rest*}``."""
    if segments and segments[-1].endswith("*}"):
        return 0
    return 1 if any(s.startswith("{") for s in segments) else _STATIC


@dataclass(frozen=True, slots=True)
class _Route:
    id: str
    method: str
    path: str
    segments: tuple[str, ...]
    dispatch_mode: str
    rank: int


@dataclass
class _App:
    id: str
    slug: str
    routes: dict[str, _Route] = field(default_factory=dict)
    cors: CorsPolicy | None = None
    static: dict[tuple[str, tuple[str, ...]], _Route] = field(default_factory=dict)
    """The static routes by method and segments: the usual request finds its
    route in one lookup, however many routes the app has."""

    def put(self, route: _Route) -> None:
        self.remove(route.id)
        self.routes[route.id] = route
        if route.rank == _STATIC:
            self.static[route.method, route.segments] = route

    def remove(self, route_id: str) -> None:
        route = self.routes.pop(route_id, None)
        if route is not None and route.rank == _STATIC:
            self.static.pop((route.method, route.segments), None)


@dataclass(frozen=True, slots=True)
class Match:
    app_id: str
    route_id: str
    params: dict[str, str]
    dispatch_mode: str
    head: bool = False
    """A HEAD request answered by the GET route (the front door sends no body)."""
    pattern: str = ""
    """The route's path pattern (``/items/{id}``): the metrics' label."""


class NoApp:
    """No app has this slug."""


@dataclass(frozen=True, slots=True)
class NoRoute:
    """The app has no route for the path (``allowed`` empty) or not for the method."""

    allowed: tuple[str, ...]


def _segments(path: str) -> tuple[str, ...]:
    trimmed = path.strip("/")
    return tuple(trimmed.split("/")) if trimmed else ()


def _bind(route: _Route, segments: tuple[str, ...]) -> dict[str, str] | None:
    patterns = route.segments
    params: dict[str, str] = {}
    if route.rank == 0:  # {rest*}: the rest of the path, one segment or more
        rest = "/".join(segments[len(patterns) - 1 :])
        if len(segments) < len(patterns) or not rest:
            return None
        params[patterns[-1][1:-2]] = rest
        patterns, segments = patterns[:-1], segments[: len(patterns) - 1]
    elif len(patterns) != len(segments):
        return None
    for pattern, value in zip(patterns, segments, strict=True):
        if pattern.startswith("{"):
            if not value:
                return None
            params[pattern[1:-1]] = value
        elif pattern != value:
            return None
    return params


def _best(app: _App, method: str, segments: tuple[str, ...]) -> Match | NoRoute:
    static = app.static.get((method, segments))
    if static is not None:  # a static route wins over every other
        return Match(app.id, static.id, {}, static.dispatch_mode, pattern=static.path)
    allowed: set[str] = set()
    best: tuple[_Route, dict[str, str]] | None = None
    for route in app.routes.values():
        params = _bind(route, segments)
        if params is None:
            continue
        if route.method != method:
            allowed.add(route.method)
            continue
        if best is None or route.rank > best[0].rank:
            best = (route, params)
    if best is None:
        if "GET" in allowed:
            allowed.add("HEAD")
        return NoRoute(tuple(sorted(allowed)))
    route, params = best
    return Match(app.id, route.id, params, route.dispatch_mode, pattern=route.path)


class Routing:
    """The table and its follower; see the module docstring."""

    def __init__(self) -> None:
        self._by_slug: dict[str, _App] = {}
        self._by_id: dict[str, _App] = {}
        self.quarantined: set[str] = set()
        self.cursor = Cursor(0, 0)
        self._advanced = asyncio.Condition()
        self.on_quarantine: Callable[[str], None] = lambda _app_id: None

    # -- lookups ------------------------------------------------------------------

    def is_quarantined(self, app_id: str) -> bool:
        return app_id in self.quarantined

    def cors(self, slug: str) -> CorsPolicy | None:
        """The CORS policy of the app ``slug`` (None: none, or no such app)."""
        app = self._by_slug.get(slug)
        return None if app is None else app.cors

    def app_id(self, slug: str) -> str | None:
        app = self._by_slug.get(slug)
        return None if app is None else app.id

    def resolve(self, slug: str, method: str, path: str) -> Match | NoApp | NoRoute:
        """The route of ``method path``; a HEAD without a HEAD route is
        answered by the GET route (RFC 9110: the GET's headers, no body)."""
        app = self._by_slug.get(slug)
        if app is None:
            return NoApp()
        found = _best(app, method, _segments(path))
        if isinstance(found, NoRoute) and method == "HEAD" and "GET" in found.allowed:
            got = _best(app, "GET", _segments(path))
            if isinstance(got, Match):
                return dataclasses.replace(got, head=True)
        return found

    # -- loading and following ------------------------------------------------------

    async def load(self, db: Database) -> None:
        """Fill the table from the projections; the cursor starts at their snapshot."""
        snapshot = await db.routing_snapshot()
        for app_id, slug in snapshot.apps:
            self._put_app(app_id, slug)
        for row in snapshot.routes:
            self._put_route(row.app_id, row.id, row.method, row.path, row.dispatch_mode)
        self.quarantined = set(snapshot.quarantined)
        for app_id, cors in snapshot.cors.items():
            if app_id in self._by_id:
                self._by_id[app_id].cors = cors
        # Everything below the horizon is in the snapshot; at and above it, maybe.
        self.cursor = Cursor(snapshot.horizon, 0)

    async def follow(self, event_log: EventLog, poll_interval: float) -> None:
        """Apply the log's routing events forever (a task root: errors are logged)."""
        warned = -math.inf
        while True:
            try:
                async for events, cursor in event_log.follow(
                    self.cursor, poll_interval=poll_interval, types=ROUTING_TYPES
                ):
                    self.apply(events)
                    async with self._advanced:
                        self.cursor = cursor
                        self._advanced.notify_all()
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as e:
                if time.monotonic() - warned > 60:  # not once a second in an outage
                    warned = time.monotonic()
                    log.warning("routing follower cannot read the log: %s", e)
                await asyncio.sleep(1.0)
            except Exception:  # a task root: keep following after a failure
                log.exception("routing follower failed; retrying")
                await asyncio.sleep(1.0)

    async def caught_up(self, txid: int, position: int, timeout: float) -> bool:  # noqa: ASYNC109  # a bound on a wait, not a call
        """Wait until the event at (txid, position) is applied; False on timeout."""
        target = Cursor(txid, position)
        try:
            async with asyncio.timeout(timeout), self._advanced:
                await self._advanced.wait_for(lambda: self.cursor >= target)
        except TimeoutError:
            return False
        return True

    def apply(self, events: Iterable[RecordedEvent]) -> None:
        for recorded in events:
            self._apply(recorded)

    def _apply(self, recorded: RecordedEvent) -> None:
        event = recorded.event
        match event:
            case AppCreated() | AppUpdated():
                self._put_app(event.app_id, event.slug)
            case AppDeleted():
                app = self._by_id.pop(event.app_id, None)
                if app is not None:
                    self._by_slug.pop(app.slug, None)
                self.quarantined.discard(event.app_id)
            case RouteAdded():
                self._put_route(
                    event.app_id,
                    event.route_id,
                    event.method,
                    event.path,
                    event.dispatch_mode,
                )
            case RouteRemoved():
                app = self._by_id.get(event.app_id)
                if app is not None:
                    app.remove(event.route_id)
            case AppQuarantined():
                if event.app_id in self._by_id and event.app_id not in self.quarantined:
                    self.quarantined.add(event.app_id)
                    self.on_quarantine(event.app_id)
            case CorsSet():
                self._set_cors(event)
            case _:
                pass

    def _set_cors(self, event: CorsSet) -> None:
        app = self._by_id.get(event.app_id)
        if app is not None:
            app.cors = event.cors

    def _put_app(self, app_id: str, slug: str) -> None:
        app = self._by_id.get(app_id)
        if app is None:
            app = self._by_id[app_id] = _App(app_id, slug)
        elif app.slug != slug:
            self._by_slug.pop(app.slug, None)
            app.slug = slug
        self._by_slug[slug] = app

    def _put_route(
        self, app_id: str, route_id: str, method: str, path: str, dispatch_mode: str
    ) -> None:
        app = self._by_id.get(app_id)
        if app is not None:  # a route of an app deleted since is ignored
            segments = _segments(path)
            app.put(
                _Route(route_id, method, path, segments, dispatch_mode, _rank(segments))
            )
