"""The KV and document browsers: collections, entries by key prefix, and
documents found with the query DSL (its JSON form, as the admin API takes it)."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from picloud.domain.access import Capability
from picloud.domain.names import check_collection
from picloud.domain.paging import decode_cursor, encode_cursor
from picloud.errors import InvalidInput
from picloud.http._admin_apps import app_or_404
from picloud.http.dashboard._context import app_context
from picloud.http.dashboard._render import problem
from picloud.http.dashboard._table import page
from picloud.http.state import SERVICES
from picloud.store import DocRow
from picloud.store.docs_query import parse_query

__all__: list[str] = []

_PAGE = 50
_FILTER_MAX = 16 * 1024


def _pretty(raw: bytes) -> str:
    return msgspec.json.format(raw, indent=2).decode()


@page("/ui/apps/{app}/kv", name="ui_kv", needs=Capability.KV_READ)
async def kv_collections(request: web.Request) -> tuple[str, dict[str, Any]]:
    app = await app_or_404(request)
    rows = await request.app[SERVICES].store.kv_collections(app.id)
    return "kv.html", {
        **await app_context(request, app),
        "collections": rows,
        "collection": None,
    }


@page("/ui/apps/{app}/kv/{collection}", name="ui_kv_entries", needs=Capability.KV_READ)
async def kv_entries(request: web.Request) -> tuple[str, dict[str, Any]]:
    app = await app_or_404(request)
    collection = check_collection(request.match_info["collection"])
    prefix = request.query.get("prefix", "")
    rows = await request.app[SERVICES].store.kv_page(
        app.id,
        collection,
        prefix=prefix,
        after=decode_cursor(request.query.get("cursor")),
        limit=_PAGE + 1,
    )
    shown = rows[:_PAGE]
    more = len(rows) > _PAGE
    return "kv.html", {
        **await app_context(request, app),
        "collection": collection,
        "prefix": prefix,
        "entries": [(key, _pretty(value), expires) for key, value, expires in shown],
        "cursor": encode_cursor(shown[-1][0]) if more else None,
    }


@page("/ui/apps/{app}/docs", name="ui_docs", needs=Capability.DOCS_READ)
async def doc_collections(request: web.Request) -> tuple[str, dict[str, Any]]:
    app = await app_or_404(request)
    rows = await request.app[SERVICES].store.doc_collections(app.id)
    return "docs.html", {
        **await app_context(request, app),
        "collections": rows,
        "collection": None,
    }


@page(
    "/ui/apps/{app}/docs/{collection}", name="ui_doc_list", needs=Capability.DOCS_READ
)
async def documents(request: web.Request) -> tuple[str, dict[str, Any]]:
    """A page of the collection, or what the find box's filter finds (a
    filter the DSL refuses is shown with the box, like a form's mistake)."""
    app = await app_or_404(request)
    collection = check_collection(request.match_info["collection"])
    text = request.query.get("filter", "").strip()
    cursor, error = None, None
    if text:
        try:
            found = await _find(request, app.id, collection, text)
        except InvalidInput as e:
            found, error = [], problem(e)
    else:
        rows = await request.app[SERVICES].store.docs_page(
            app.id,
            collection,
            after=decode_cursor(request.query.get("cursor")),
            limit=_PAGE + 1,
        )
        found = rows[:_PAGE]
        cursor = encode_cursor(found[-1].id) if len(rows) > _PAGE else None
    return "docs.html", {
        **await app_context(request, app),
        "collection": collection,
        "filter": text,
        "docs": [_document(row) for row in found],
        "cursor": cursor,
        "error": error,
    }


async def _find(
    request: web.Request, app_id: str, collection: str, text: str
) -> list[DocRow]:
    """The API's find: the same parse of the DSL, the same store query."""
    if len(text) > _FILTER_MAX:
        raise InvalidInput(f"the filter is longer than {_FILTER_MAX} characters")
    try:
        raw = msgspec.json.decode(text)
    except msgspec.DecodeError as e:
        raise InvalidInput(f"the filter is not JSON: {e}") from None
    if not isinstance(raw, dict):
        raise InvalidInput('the filter is a JSON object, like {"tier": "gold"}')
    settings = request.app[SERVICES].settings
    query = parse_query(
        raw, max_in=settings.docs_max_in_items, max_limit=settings.docs_max_limit
    )
    return await request.app[SERVICES].store.find_docs(app_id, collection, query)


def _document(row: DocRow) -> dict[str, str]:
    return {
        "id": row.id,
        "data": _pretty(row.data),
        "created_at": row.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "updated_at": row.updated_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
