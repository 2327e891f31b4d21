"""The I/O SDK of one invocation: ``kv`` and ``docs`` of the invoking app.

Guarantees (SPEC.md §3):
- Isolation: the app is the invocation's; no argument names another app.
- Atomicity: writes are buffered here and become events only if the
  invocation succeeds; a failed invocation writes nothing.
- Read-your-writes: every read (get, has, list, find) sees this invocation's
  writes, then the writes of earlier commands not yet durable, then the
  projections.
- Every call is checked against the capabilities the invocation runs with,
  and every argument is validated with a message naming what is wrong.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import msgspec

from picloud.actors._app_data import DataSource, KvIntent, Staged
from picloud.actors._outbound import FetchRun
from picloud.actors._sdk_dead_letters import DeadLetterOps
from picloud.config import Settings
from picloud.domain.access import Capability
from picloud.domain.names import check_collection
from picloud.domain.paging import decode_cursor
from picloud.domain.sdk_args import limit_of, options, page_of
from picloud.domain.sdk_ops import check_sdk_call
from picloud.domain.secret_box import SecretBox
from picloud.domain.values import check_json, check_text
from picloud.errors import ConfigError, InvalidInput, SdkCallError
from picloud.events import rfc3339, utcnow
from picloud.events.app import DocCreated, DocDeleted, DocUpdated, KvDeleted, KvSet
from picloud.scripting import JSONValue
from picloud.store import DocRow
from picloud.store.docs_query import matches, parse_query, sort_key

__all__ = ["MAX_TTL_MS", "DataAccess", "envelope", "new_doc_id"]

MAX_TTL_MS = 10 * 365 * 86_400_000

_encode = msgspec.json.encode
_decode = msgspec.json.decode


def new_doc_id() -> str:
    """Time-ordered: millisecond clock then randomness (creation order sorts)."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def envelope(row: DocRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "data": _decode(row.data),
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    }


class DataAccess:
    """One invocation's view of its app's data; an :class:`SdkHandler`."""

    def __init__(
        self,
        data: DataSource,
        *,
        granted: frozenset[Capability],
        settings: Settings,
        outbound: FetchRun | None = None,
    ) -> None:
        self._data = data
        self._granted = granted
        self._settings = settings
        self._outbound = outbound
        self._sealed: dict[str, tuple[str, str]] | None = None
        self.revealed: dict[str, str] = {}
        """Secret values this run read → their names."""
        self.staged = Staged()

    @property
    def fetches(self) -> int:
        """The run's ``http.fetch`` calls so far."""
        return 0 if self._outbound is None else self._outbound.calls

    def forget(self) -> None:
        """Drop the writes staged so far (the run is started again)."""
        self.staged = Staged()

    async def __call__(self, op: str, args: list[JSONValue]) -> JSONValue:
        """Run SDK operation ``op`` (domain.sdk_ops) with its Lua arguments."""
        handler: Callable[[list[Any]], Awaitable[JSONValue]] = getattr(
            self, check_sdk_call(self._granted, op).handler
        )
        try:
            return await handler(args)
        except InvalidInput as e:  # a malformed name or filter: the script's mistake
            raise SdkCallError(e.message) from None

    # -- KV -------------------------------------------------------------------------

    def _key(self, args: list[Any]) -> tuple[str, str]:
        collection = check_collection(args[0] if args else None)
        key = args[1] if len(args) > 1 else None
        if not isinstance(key, str) or not key:
            raise SdkCallError("a key must be a non-empty string")
        if len(key.encode()) > self._settings.kv_max_key_bytes:
            raise SdkCallError(
                f"key is longer than {self._settings.kv_max_key_bytes} bytes"
            )
        return collection, check_text(key, "the key")

    async def _kv_value(self, k: tuple[str, str]) -> bytes | None:
        if k in self.staged.kv:
            return self.staged.kv_live(k, utcnow())
        return await self._data.kv_read(*k)

    async def kv_get(self, args: list[Any]) -> JSONValue:
        value = await self._kv_value(self._key(args))
        return None if value is None else _decode(value)

    async def kv_has(self, args: list[Any]) -> JSONValue:
        return await self._kv_value(self._key(args)) is not None

    async def kv_set(self, args: list[Any]) -> JSONValue:
        k = self._key(args)
        if len(args) < 3 or args[2] is None:
            raise SdkCallError("kv set needs a value, not nil or null (use delete)")
        value = _encode(args[2])
        self._check_size(value)
        now = utcnow()
        ttl_ms = options(args, 3, {"ttl_ms"}).get("ttl_ms")
        expires = None
        if ttl_ms is not None:
            if not isinstance(ttl_ms, int) or isinstance(ttl_ms, bool):
                raise SdkCallError("ttl_ms must be a positive integer (milliseconds)")
            if not 1 <= ttl_ms <= MAX_TTL_MS:
                raise SdkCallError(f"ttl_ms must be from 1 to {MAX_TTL_MS} (10 years)")
            expires = now + timedelta(milliseconds=ttl_ms)
        event = KvSet(
            at=now,
            app_id=self._data.app_id,
            collection=k[0],
            key=k[1],
            value=msgspec.Raw(value),
            expires_at=expires,
        )
        self.staged.events.append(KvIntent(event))
        self.staged.kv[k] = value
        if expires is None:
            self.staged.kv_expires.pop(k, None)
        else:
            self.staged.kv_expires[k] = expires
        return None

    async def kv_delete(self, args: list[Any]) -> JSONValue:
        k = self._key(args)
        prev = await self._kv_value(k)
        if prev is None:
            return False
        self.staged.events.append(
            KvDeleted(
                at=utcnow(),
                app_id=self._data.app_id,
                collection=k[0],
                key=k[1],
                prev=msgspec.Raw(prev),
            )
        )
        self.staged.kv[k] = None
        self.staged.kv_expires.pop(k, None)
        return True

    async def kv_list(self, args: list[Any]) -> JSONValue:
        collection = check_collection(args[0] if args else None)
        opts = options(args, 1, {"prefix", "cursor", "limit"})
        prefix = opts.get("prefix") or ""
        if not isinstance(prefix, str):
            raise SdkCallError("prefix must be a string")
        check_text(prefix, "the prefix")
        after, limit = decode_cursor(opts.get("cursor")), limit_of(opts.get("limit"))
        overlay = self._data.kv_pending_in(collection)
        now = utcnow()
        overlay.update(
            {
                k: self.staged.kv_live((c, k), now)
                for (c, k) in self.staged.kv
                if c == collection
            }
        )
        overlay = {
            k: v for k, v in overlay.items() if k > after and k.startswith(prefix)
        }
        rows = await self._data.kv_page(
            collection,
            prefix=prefix,
            after=after,
            limit=limit + 1 + len(overlay),
        )
        merged = {k: v for k, v in rows if k not in overlay}
        merged.update({k: v for k, v in overlay.items() if v is not None})
        keys = sorted(merged)[: limit + 1]
        page, more = keys[:limit], len(keys) > limit
        items = [{"key": k, "value": _decode(merged[k])} for k in page]
        return page_of(items, page[-1] if more and page else None)

    # -- docs -----------------------------------------------------------------------

    def _doc_key(self, args: list[Any]) -> tuple[str, str]:
        collection = check_collection(args[0] if args else None)
        doc_id = args[1] if len(args) > 1 else None
        if not isinstance(doc_id, str) or not doc_id:
            raise SdkCallError("a document id must be a non-empty string")
        return collection, check_text(doc_id, "the document id")

    async def _doc(self, d: tuple[str, str]) -> DocRow | None:
        if d in self.staged.docs:
            return self.staged.docs[d]
        return await self._data.doc_read(*d)

    def _data_arg(self, args: list[Any], index: int) -> bytes:
        data = args[index] if len(args) > index else None
        if not isinstance(data, dict):
            raise SdkCallError("document data must be a table with string keys")
        value = _encode(data)
        self._check_size(value)
        return value

    async def doc_create(self, args: list[Any]) -> JSONValue:
        collection = check_collection(args[0] if args else None)
        data = self._data_arg(args, 1)
        now = utcnow()
        row = DocRow(new_doc_id(), data, now, now)
        self.staged.events.append(
            DocCreated(
                at=now,
                app_id=self._data.app_id,
                collection=collection,
                doc_id=row.id,
                data=msgspec.Raw(data),
            )
        )
        self.staged.docs[collection, row.id] = row
        return envelope(row)

    async def doc_get(self, args: list[Any]) -> JSONValue:
        row = await self._doc(self._doc_key(args))
        return None if row is None else envelope(row)

    async def doc_update(self, args: list[Any]) -> JSONValue:
        d = self._doc_key(args)
        data = self._data_arg(args, 2)
        old = await self._doc(d)
        if old is None:
            return None
        now = utcnow()
        row = DocRow(old.id, data, old.created_at, now)
        self.staged.events.append(
            DocUpdated(
                at=now,
                app_id=self._data.app_id,
                collection=d[0],
                doc_id=d[1],
                data=msgspec.Raw(data),
                prev_data=msgspec.Raw(old.data),
            )
        )
        self.staged.docs[d] = row
        return envelope(row)

    async def doc_delete(self, args: list[Any]) -> JSONValue:
        d = self._doc_key(args)
        old = await self._doc(d)
        if old is None:
            return False
        self.staged.events.append(
            DocDeleted(
                at=utcnow(),
                app_id=self._data.app_id,
                collection=d[0],
                doc_id=d[1],
                prev_data=msgspec.Raw(old.data),
            )
        )
        self.staged.docs[d] = None
        return True

    def _docs_overlay(self, collection: str) -> dict[str, DocRow | None]:
        overlay = self._data.docs_pending_in(collection)
        overlay.update(
            {i: r for (c, i), r in self.staged.docs.items() if c == collection}
        )
        return overlay

    async def _find(self, args: list[Any], *, one: bool) -> list[DocRow]:
        collection = check_collection(args[0] if args else None)
        raw = args[1] if len(args) > 1 and args[1] is not None else {}
        if one and isinstance(raw, dict):
            raw = {**raw, "$limit": 1}
        query = parse_query(
            raw,
            max_in=self._settings.docs_max_in_items,
            max_limit=self._settings.docs_max_limit,
        )
        overlay = self._docs_overlay(collection)
        rows = await self._data.find_docs(collection, query, extra=len(overlay))
        found = [r for r in rows if r.id not in overlay]
        found += [
            r
            for r in overlay.values()
            if r is not None and matches(query, _decode(r.data))
        ]
        key = sort_key(query)
        found.sort(key=lambda r: key(r.id, _decode(r.data)))
        return found[: query.limit]

    async def doc_find(self, args: list[Any]) -> JSONValue:
        return [envelope(r) for r in await self._find(args, one=False)]

    async def doc_find_one(self, args: list[Any]) -> JSONValue:
        rows = await self._find(args, one=True)
        return envelope(rows[0]) if rows else None

    async def doc_list(self, args: list[Any]) -> JSONValue:
        collection = check_collection(args[0] if args else None)
        opts = options(args, 1, {"cursor", "limit"})
        after, limit = decode_cursor(opts.get("cursor")), limit_of(opts.get("limit"))
        overlay = {i: r for i, r in self._docs_overlay(collection).items() if i > after}
        rows = await self._data.docs_page(
            collection,
            after=after,
            limit=limit + 1 + len(overlay),
        )
        merged = {r.id: r for r in rows if r.id not in overlay}
        merged.update({i: r for i, r in overlay.items() if r is not None})
        ids = sorted(merged)[: limit + 1]
        page, more = ids[:limit], len(ids) > limit
        return page_of(
            [envelope(merged[i]) for i in page], page[-1] if more and page else None
        )

    def _check_size(self, value: bytes) -> None:
        """A value to store: within the size limit, and storable (no NUL)."""
        if len(value) > self._settings.script_max_value_bytes:
            raise SdkCallError(
                f"value is larger than {self._settings.script_max_value_bytes} bytes"
            )
        check_json(value, "the value")

    # -- dead letters ---------------------------------------------------------------
    # Bound per call, not per invocation: most invocations make no SDK call.

    async def dead_letters_list(self, args: list[Any]) -> JSONValue:
        return await DeadLetterOps(self._data, self.staged).list_letters(args)

    async def dead_letters_replay(self, args: list[Any]) -> JSONValue:
        return await DeadLetterOps(self._data, self.staged).replay(args)

    async def dead_letters_resolve(self, args: list[Any]) -> JSONValue:
        return await DeadLetterOps(self._data, self.staged).resolve(args)

    # -- secrets ----------------------------------------------------------------------

    async def secrets_get(self, args: list[Any]) -> JSONValue:
        """One secret of the app, opened here; what was read is remembered so
        the run's logs and error can be scrubbed of it (:attr:`revealed`)."""
        name = args[0] if args else None
        if not isinstance(name, str):
            raise SdkCallError("a secret's name must be a string")
        if self._sealed is None:
            self._sealed = await self._data.sealed_secrets()
        sealed = self._sealed.get(name)
        if sealed is None:
            return None
        try:
            box = SecretBox(self._settings.secret_key)
        except ConfigError as e:  # a host started without the key: say so
            raise SdkCallError(f"secrets cannot be opened here: {e.message}") from None
        value = box.open(self._data.app_id, name, *sealed)
        self.revealed[value] = name
        return value

    # -- outbound HTTP ----------------------------------------------------------------

    async def http_fetch(self, args: list[Any]) -> JSONValue:
        if self._outbound is None:
            raise SdkCallError("http.fetch is not available here")
        return await self._outbound(args)
