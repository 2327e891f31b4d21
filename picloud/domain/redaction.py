"""What never leaves a request: credentials.

A request forwarded to a script keeps its headers, except PiCloud's own
credentials (those are stripped by the front door: see http.ingress); a
request that is *stored* — the accepted request of an async route, which a
dead letter keeps too — has its credential headers redacted first, so no
record of a run holds a caller's secret.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from picloud.domain.values import without_nul
from picloud.events.app import RequestRecord

__all__ = [
    "CREDENTIAL_HEADERS",
    "REDACTED",
    "credential_names",
    "redacted",
    "scrub",
    "stored_request",
]

CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
REDACTED = "[redacted]"


def credential_names(configured: str) -> frozenset[str]:
    """The credential headers plus the configured ones (comma-separated)."""
    extra = {name.strip().lower() for name in configured.split(",") if name.strip()}
    return CREDENTIAL_HEADERS | extra


def redacted(headers: dict[str, str], names: Iterable[str]) -> dict[str, str]:
    """``headers`` (lower-case names) with the values of ``names`` replaced."""
    secret = set(names)
    return {k: REDACTED if k in secret else v for k, v in headers.items()}


def stored_request(request: RequestRecord, names: Iterable[str]) -> RequestRecord:
    """``request`` as it may be stored: credentials redacted, and every text
    fit for Postgres (a NUL a caller sent becomes U+FFFD in the record)."""

    def clean(mapping: dict[str, str]) -> dict[str, str]:
        return {without_nul(k): without_nul(v) for k, v in mapping.items()}

    return msgspec.structs.replace(
        request,
        path=without_nul(request.path),
        params=clean(request.params),
        query=clean(request.query),
        headers=clean(redacted(request.headers, names)),
    )


_SHORTEST_SCRUBBED = 4
"""A shorter secret would blank ordinary words of a log line; such a value
is no secret anyway."""


def scrub(text: str, revealed: dict[str, str]) -> str:
    """``text`` with each secret value a run read (value → name) replaced by
    ``[secret NAME]``: a script's logs and error are recorded, its secrets not."""
    for value in sorted(revealed, key=len, reverse=True):
        if len(value) >= _SHORTEST_SCRUBBED and value in text:
            text = text.replace(value, f"[secret {revealed[value]}]")
    return text
