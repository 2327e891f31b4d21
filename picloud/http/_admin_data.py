"""Admin/data API of an app's KV entries and documents (SPEC.md §9).

Reads come from the projections. Writes are commands to the app's actor,
which runs them through the very code the SDK uses (same checks, same
events), so a value written here is what a script reads and its triggers see.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec
from aiohttp import web

from picloud.actors.sdk import MAX_TTL_MS, envelope
from picloud.domain.access import Capability
from picloud.domain.commands import DataOp
from picloud.domain.names import check_collection
from picloud.domain.paging import encode_cursor
from picloud.errors import NotFound
from picloud.events import rfc3339
from picloud.http._admin_apps import app_or_404
from picloud.http._admin_scripts import send
from picloud.http._api import endpoint, json_response
from picloud.http._input import ReadInside
from picloud.http._params import cursor, limit, positive, query_of, text
from picloud.http.state import SERVICES
from picloud.store.docs_query import parse_query

__all__ = [
    "EXPIRES_HEADER",
    "Collections",
    "DocData",
    "Document",
    "FindBody",
    "KvPage",
    "KvValue",
]

EXPIRES_HEADER = "X-PiCloud-Expires-At"

Row = TypeVar("Row")

_PAGE = 100
_MAX_PAGE = 1_000
_PAGING = (cursor(), limit(default=_PAGE, maximum=_MAX_PAGE))


KvValue = Annotated[
    Any,
    msgspec.Meta(
        title="JsonValue",
        description="any JSON value but null (delete the key instead)",
        extra_json_schema={"not": {"type": "null"}},
    ),
]
DocData = Annotated[
    dict[str, Any],
    msgspec.Meta(title="DocumentData", description="a document's data: an object"),
    ReadInside(1),  # docs.get answers it inside its envelope
]


class Collection(msgspec.Struct, frozen=True):
    name: str
    count: int


class Collections(msgspec.Struct, frozen=True):
    items: list[Collection]


class FindBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    filter: dict[str, Any] = {}


class KvEntry(msgspec.Struct, frozen=True):
    key: str
    value: KvValue
    expires_at: datetime | None = None
    """When a key set with a TTL runs out (None: it does not)."""


class KvPage(msgspec.Struct, frozen=True):
    items: list[KvEntry]
    cursor: str | None


class Document(msgspec.Struct, frozen=True):
    """A document as the API and scripts see it (:func:`envelope`)."""

    id: str
    data: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class DocPage(msgspec.Struct, frozen=True):
    items: list[Document]
    cursor: str | None


class DocList(msgspec.Struct, frozen=True):
    items: list[Document]


def _collection(request: web.Request) -> str:
    return check_collection(request.match_info["collection"])


async def _data_op(request: web.Request, app_id: str, op: str, args: list[Any]) -> Any:
    return (await send(request, app_id, DataOp(op=op, args=args))).result


def _page(
    rows: Sequence[Row],
    limit: int,
    *,
    item: Callable[[Row], Any],
    position: Callable[[Row], str],
) -> web.Response:
    """One page of a browse that fetched limit + 1 rows: the extra row only
    tells that more follow, and the cursor is the last shown row's position."""
    page = rows[:limit]
    more = len(rows) > limit
    cursor = encode_cursor(position(page[-1])) if more else None
    return json_response({"items": [item(r) for r in page], "cursor": cursor})


# -- KV -------------------------------------------------------------------------------


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/kv",
    needs=Capability.KV_READ,
    summary="The app's KV collections with their sizes",
    answer=Collections,
)
async def list_kv_collections(request: web.Request) -> Collections:
    app = await app_or_404(request)
    rows = await request.app[SERVICES].store.kv_collections(app.id)
    return Collections(items=[Collection(name, count) for name, count in rows])


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/kv/{collection}",
    needs=Capability.KV_READ,
    summary="Browse a KV collection in key order (?prefix=&cursor=&limit=)",
    answer=KvPage,
    query=(text("prefix", "only keys that start with it", max_length=1024), *_PAGING),
)
async def list_kv_entries(request: web.Request) -> web.Response:
    app = await app_or_404(request)
    collection, query = _collection(request), query_of(request)
    rows = await request.app[SERVICES].store.kv_page(
        app.id,
        collection,
        prefix=query["prefix"],
        after=query["cursor"],
        limit=query["limit"] + 1,
    )
    return _page(
        rows,
        query["limit"],
        item=lambda row: {
            "key": row[0],
            "value": msgspec.Raw(row[1]),
            "expires_at": row[2],
        },
        position=lambda row: row[0],
    )


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/kv/{collection}/{key:.+}",
    needs=Capability.KV_READ,
    summary="One KV value (a TTL's end in the X-PiCloud-Expires-At header)",
    answer=KvValue,
)
async def get_kv_entry(request: web.Request) -> web.Response:
    app = await app_or_404(request)
    k = (_collection(request), request.match_info["key"])
    found = await request.app[SERVICES].store.kv_value(app.id, *k)
    if found is None:
        raise NotFound(f"no key {k[1][:200]!r} in {k[0]!r}")
    response = json_response(msgspec.Raw(found[0]))
    if found[1] is not None:
        response.headers[EXPIRES_HEADER] = rfc3339(found[1])
    return response


@endpoint(
    "PUT",
    "/api/v1/admin/apps/{app}/kv/{collection}/{key:.+}",
    needs=Capability.KV_WRITE,
    summary="Set a KV value (the body is the JSON value; ?ttl_ms= gives it a TTL)",
    answer=KvValue,
    query=(
        positive("ttl_ms", "the key lives this many milliseconds", maximum=MAX_TTL_MS),
    ),
)
async def put_kv_entry(request: web.Request, value: KvValue) -> web.Response:
    app = await app_or_404(request)
    collection, key = _collection(request), request.match_info["key"]
    args: list[Any] = [collection, key, value]
    ttl_ms = query_of(request)["ttl_ms"]
    if ttl_ms is not None:
        args.append({"ttl_ms": ttl_ms})
    await _data_op(request, app.id, "kv.set", args)
    return json_response(value)


@endpoint(
    "DELETE",
    "/api/v1/admin/apps/{app}/kv/{collection}/{key:.+}",
    needs=Capability.KV_WRITE,
    summary="Delete a KV value",
    status=204,
)
async def delete_kv_entry(request: web.Request) -> None:
    app = await app_or_404(request)
    collection, key = _collection(request), request.match_info["key"]
    if not await _data_op(request, app.id, "kv.delete", [collection, key]):
        raise NotFound(f"no key {key[:200]!r} in {collection!r}")


# -- documents ----------------------------------------------------------------------


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/docs",
    needs=Capability.DOCS_READ,
    summary="The app's document collections with their sizes",
    answer=Collections,
)
async def list_doc_collections(request: web.Request) -> Collections:
    app = await app_or_404(request)
    rows = await request.app[SERVICES].store.doc_collections(app.id)
    return Collections(items=[Collection(name, count) for name, count in rows])


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/docs/{collection}",
    needs=Capability.DOCS_READ,
    summary="Browse a document collection in creation order (?cursor=&limit=)",
    answer=DocPage,
    query=_PAGING,
)
async def list_documents(request: web.Request) -> web.Response:
    app = await app_or_404(request)
    collection, query = _collection(request), query_of(request)
    rows = await request.app[SERVICES].store.docs_page(
        app.id, collection, after=query["cursor"], limit=query["limit"] + 1
    )
    return _page(rows, query["limit"], item=envelope, position=lambda row: row.id)


@endpoint(
    "POST",
    "/api/v1/admin/apps/{app}/docs/{collection}",
    needs=Capability.DOCS_WRITE,
    summary="Create a document (the body is its data object)",
    answer=Document,
    status=201,
)
async def create_document(request: web.Request, data: DocData) -> Any:
    app = await app_or_404(request)
    return await _data_op(request, app.id, "docs.create", [_collection(request), data])


@endpoint(
    "POST",
    "/api/v1/admin/apps/{app}/docs/{collection}/find",
    needs=Capability.DOCS_READ,
    summary="Find documents with the query DSL: {filter}",
    answer=DocList,
)
async def find_documents(request: web.Request, body: FindBody) -> web.Response:
    app = await app_or_404(request)
    settings = request.app[SERVICES].settings
    query = parse_query(
        body.filter,
        max_in=settings.docs_max_in_items,
        max_limit=settings.docs_max_limit,
    )
    rows = await request.app[SERVICES].store.find_docs(
        app.id, _collection(request), query
    )
    return json_response({"items": [envelope(r) for r in rows]})


@endpoint(
    "GET",
    "/api/v1/admin/apps/{app}/docs/{collection}/{id}",
    needs=Capability.DOCS_READ,
    summary="One document",
    answer=Document,
)
async def get_document(request: web.Request) -> Any:
    app = await app_or_404(request)
    collection, doc_id = _collection(request), request.match_info["id"]
    row = await request.app[SERVICES].store.doc(app.id, collection, doc_id)
    if row is None:
        raise NotFound(f"no document {doc_id[:80]!r} in {collection!r}")
    return envelope(row)


@endpoint(
    "PUT",
    "/api/v1/admin/apps/{app}/docs/{collection}/{id}",
    needs=Capability.DOCS_WRITE,
    summary="Replace a document's data (the body is the data object)",
    answer=Document,
)
async def replace_document(request: web.Request, data: DocData) -> Any:
    app = await app_or_404(request)
    collection, doc_id = _collection(request), request.match_info["id"]
    result = await _data_op(request, app.id, "docs.update", [collection, doc_id, data])
    if result is None:
        raise NotFound(f"no document {doc_id[:80]!r} in {collection!r}")
    return result


@endpoint(
    "DELETE",
    "/api/v1/admin/apps/{app}/docs/{collection}/{id}",
    needs=Capability.DOCS_WRITE,
    summary="Delete a document",
    status=204,
)
async def delete_document(request: web.Request) -> None:
    app = await app_or_404(request)
    collection, doc_id = _collection(request), request.match_info["id"]
    if not await _data_op(request, app.id, "docs.delete", [collection, doc_id]):
        raise NotFound(f"no document {doc_id[:80]!r} in {collection!r}")
