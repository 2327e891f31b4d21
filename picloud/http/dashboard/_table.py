"""Declaring the dashboard's pages and actions, and serving them.

A *page* answers a GET with a template and its context. It declares the
capability it needs exactly as an admin API endpoint does, and the same
:meth:`~picloud.http._auth.Auth.authorize` checks it (the app comes from the
``{app}`` segment, or from ``app_of=``).

An *action* answers the POST of a form by doing what an admin API endpoint
does. It is authorized with that endpoint's own declaration — the same
capability on the same app, and the same CSRF check of a cookie-signed
request (the form's ``csrf_token`` field) — so a button hidden from a viewer
is also refused to a viewer who forges its POST (403). On success it
redirects (303) to the page to show next. A mistake in the form (a 4xx of
the API other than a refusal) shows the form's page again with the message
in an alert and what was typed, as a 200: the page is the answer a person
needs, and a browser logs every 4xx document as a console error. Refusals
(401, 403) and the rest get the error page with the API's status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from picloud.domain.access import Capability
from picloud.errors import PiCloudError, Unauthenticated
from picloud.http._api import AppOf, Endpoint
from picloud.http._auth import AUTH
from picloud.http._errors import status_of
from picloud.http.dashboard._render import error_page, problem, render

__all__ = [
    "ACTIONS",
    "PAGES",
    "Action",
    "Form",
    "Page",
    "action",
    "add_routes",
    "auth_entry",
    "page",
]

Form = MultiDictProxy[Any]
Context = dict[str, Any]
PageResult = tuple[str, Context] | web.StreamResponse
PageHandler = Callable[[web.Request], Awaitable[PageResult]]
ActionHandler = Callable[[web.Request, Form], Awaitable[str | web.StreamResponse]]
ApiOf = Callable[[web.Request, Form], Awaitable[Endpoint]]


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    handler: PageHandler
    needs: Capability | None
    app_of: AppOf | None = None

    @property
    def entry(self) -> Endpoint:
        """The page as the auth check sees an endpoint."""
        return auth_entry("GET", self.path, needs=self.needs, app_of=self.app_of)


async def _not_called(request: web.Request) -> None:
    raise AssertionError("a declaration for the auth check only")


def auth_entry(
    method: str, path: str, *, needs: Capability | None, app_of: AppOf | None = None
) -> Endpoint:
    """What :meth:`~picloud.http._auth.Auth.authorize` checks for a dashboard
    request: the capability it needs and how to find its app."""
    return Endpoint(
        method=method,
        path=path,
        handler=_not_called,
        summary=f"dashboard {method} {path}",
        needs=needs,
        body=None,
        answer=None,
        status=200,
        tag="dashboard",
        app_of=app_of,
    )


@dataclass(frozen=True)
class Action:
    name: str
    path: str
    handler: ActionHandler
    api: Endpoint | ApiOf
    """The admin API endpoint whose work this is, or how to pick it from the form."""
    needs: Capability
    """What the button needs, for templates: the endpoint's own capability."""
    back: PageHandler | None


PAGES: list[Page] = []
ACTIONS: dict[str, Action] = {}


def page(
    path: str, *, name: str, needs: Capability | None, app_of: AppOf | None = None
) -> Callable[[PageHandler], PageHandler]:
    def register(handler: PageHandler) -> PageHandler:
        PAGES.append(Page(name, path, handler, needs, app_of))
        return handler

    return register


def action(
    path: str,
    *,
    name: str,
    api: Endpoint | ApiOf,
    needs: Capability | None = None,
    back: PageHandler | None = None,
) -> Callable[[ActionHandler], ActionHandler]:
    """Declare the POST ``path`` doing ``api``'s work; ``back`` is the page
    that shows the form again with a mistake. ``needs`` must be given when
    ``api`` picks the endpoint at request time."""
    if needs is None:
        if not isinstance(api, Endpoint) or api.needs is None:
            raise ValueError(f"{name}: say what the button needs")
        needs = api.needs

    def register(handler: ActionHandler) -> ActionHandler:
        if name in ACTIONS:
            raise ValueError(f"dashboard action {name} is declared twice")
        ACTIONS[name] = Action(name, path, handler, api, needs, back)
        return handler

    return register


def add_routes(app: web.Application) -> None:
    for p in PAGES:
        app.router.add_get(p.path, _page_handler(p), name=p.name)
    for a in ACTIONS.values():
        app.router.add_post(a.path, _action_handler(a), name=a.name)


def _page_handler(declared: Page) -> Callable[[web.Request], Awaitable[Any]]:
    entry = declared.entry

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            await request.app[AUTH].authorize(request, entry)
            result = await declared.handler(request)
        except Unauthenticated:
            raise web.HTTPSeeOther("/") from None  # the sign-in page
        except PiCloudError as e:
            return await error_page(request, e)
        if isinstance(result, web.StreamResponse):
            return result
        template, context = result
        return await render(request, template, context)

    return handle


def _action_handler(declared: Action) -> Callable[[web.Request], Awaitable[Any]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        try:
            api = declared.api
            entry = api if isinstance(api, Endpoint) else await api(request, form)
            await request.app[AUTH].authorize(request, entry)
            outcome = await declared.handler(request, form)
        except PiCloudError as e:
            if declared.back is None or status_of(e) >= 500 or _refused(e):
                return await error_page(request, e)
            return await _again(request, declared.back, e, form)
        if isinstance(outcome, web.StreamResponse):
            return outcome
        raise web.HTTPSeeOther(outcome)

    return handle


def _refused(error: PiCloudError) -> bool:
    return status_of(error) in (401, 403)


async def _again(
    request: web.Request, back: PageHandler, error: PiCloudError, form: Form
) -> web.StreamResponse:
    """The form's page again, with the mistake and what was typed; only to a
    caller who may see that page (an action may need less than its page:
    making one's own key needs nothing on the app)."""
    try:
        shown = next(p for p in PAGES if p.handler is back)
        await request.app[AUTH].authorize(request, shown.entry)
        result = await back(request)
    except PiCloudError as e:
        return await error_page(request, e)
    if isinstance(result, web.StreamResponse):
        return result
    template, context = result
    context = {**context, "error": problem(error), "form": form}
    return await render(request, template, context)
