"""The outbound calls of one run (``http.fetch``): its allowlist, its count,
and the journal that keeps a delivery's retried commit from fetching twice.

Why a journal: an async run or a trigger's run whose outcome could not be
committed (the database went away mid-append) runs again as the same
attempt, from the log. Its fetches must not be sent again: each answer is
recorded (outside the log, like a snapshot: it is a cache of what the world
answered, keyed by the delivery, its attempt and the call's place in the
run) before the script sees it, and the rerun is handed the recorded answer
of each call that asks the same thing. A sync route's run is never rerun
(and a run that fetched is never preempted: see the driver), so it keeps
no journal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import msgspec

from picloud.actors._fetch import (
    FetchAnswer,
    FetchLimits,
    FetchRequest,
    fetch,
    parse_request,
)
from picloud.errors import SdkCallError
from picloud.scripting import JSONValue
from picloud.store import AppStore

__all__ = ["FetchJournal", "FetchRun"]


class _Entry(msgspec.Struct, frozen=True, kw_only=True):
    answer: FetchAnswer | None = None
    error: str | None = None


_encode = msgspec.json.encode
_decode_entry = msgspec.json.Decoder(_Entry).decode


class FetchJournal:
    """The recorded answers of one attempt of one delivery."""

    def __init__(self, store: AppStore, run_key: str) -> None:
        self._store = store
        self.run_key = run_key
        self._entries: dict[int, tuple[str, bytes]] | None = None

    async def recorded(self, seq: int, digest: str) -> _Entry | None:
        if self._entries is None:
            self._entries = await self._store.fetch_journal(self.run_key)
        found = self._entries.get(seq)
        if found is None or found[0] != digest:
            return None  # not made before, or the run asked something else
        return _decode_entry(found[1])

    async def record(self, seq: int, digest: str, entry: _Entry) -> None:
        await self._store.record_fetch(self.run_key, seq, digest, _encode(entry))


def _digest(request: FetchRequest) -> str:
    h = hashlib.sha256()
    for part in (request.method, request.url, _encode(request.headers)):
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    h.update(request.body)
    return h.hexdigest()[:32]


@dataclass
class FetchRun:
    """``http.fetch`` for one run."""

    limits: FetchLimits
    allowed: tuple[str, ...]
    journal: FetchJournal | None = None
    calls: int = field(default=0)

    async def __call__(self, args: list[object]) -> JSONValue:
        if self.calls >= self.limits.max_calls:
            raise SdkCallError(
                f"more calls than the fetch_max_calls_per_run limit "
                f"({self.limits.max_calls} per run)"
            )
        request = parse_request(list(args), self.limits)
        seq, self.calls = self.calls, self.calls + 1
        digest = _digest(request)
        entry = None
        if self.journal is not None:
            entry = await self.journal.recorded(seq, digest)
        if entry is None:
            entry = await self._fetch(request)
            if self.journal is not None:
                await self.journal.record(seq, digest, entry)
        if entry.answer is None:
            raise SdkCallError(entry.error or "the request failed")
        return entry.answer.to_script()

    async def _fetch(self, request: FetchRequest) -> _Entry:
        try:
            answer = await fetch(request, allowed=self.allowed, limits=self.limits)
        except SdkCallError as e:
            return _Entry(error=e.message)
        return _Entry(answer=answer)
