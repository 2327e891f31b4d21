"""What never leaves: credentials in requests, secrets in what the log shows.

A request forwarded to a script keeps its headers, except PiCloud's own
credentials (those are stripped by the front door: see http.ingress); a
request that is *stored* — the accepted request of an async route, which a
dead letter keeps too — has its credential headers redacted first, so no
record of a run holds a caller's secret.

Events leave PiCloud (the events API, its live tail, ``picloud events`` as
JSONL or Parquet, the differences ``picloud replay`` prints) only through
:func:`public_json`, the one redaction of what the log shows: every field
named like a secret (:func:`secret_name`: password and key hashes, tokens,
API keys, credentials) is removed wherever it is, in our events and in an
app's data alike, and so is every credential header of a stored request
(and every header already redacted when it was stored). The log itself
keeps them: replay needs the hashes to rebuild the identity projections.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from picloud.domain.values import without_nul
from picloud.events.app import RequestRecord

__all__ = [
    "CREDENTIAL_HEADERS",
    "REDACTED",
    "credential_names",
    "public_json",
    "redacted",
    "scrub",
    "scrub_secrets",
    "secret_name",
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
    secret = names if isinstance(names, frozenset | set) else set(names)
    return {k: REDACTED if k in secret else v for k, v in headers.items()}


def stored_request(request: RequestRecord, names: Iterable[str]) -> RequestRecord:
    """``request`` as it may be stored: credentials redacted, and every text
    fit for Postgres (a NUL a caller sent becomes U+FFFD in the record).

    Every sync route run's request is stored (for what-if), so the common
    case is checked in C: no NUL anywhere and no credential header gives the
    request back as it is; no NUL costs one pass over the headers."""
    secret = names if isinstance(names, frozenset | set) else frozenset(names)
    nul = _has_nul(request)
    if not nul:
        if secret.isdisjoint(request.headers):
            return request
        return msgspec.structs.replace(
            request, headers=redacted(request.headers, secret)
        )

    def clean(mapping: dict[str, str]) -> dict[str, str]:
        return {without_nul(k): without_nul(v) for k, v in mapping.items()}

    return msgspec.structs.replace(
        request,
        path=without_nul(request.path),
        params=clean(request.params),
        query=clean(request.query),
        headers=clean(redacted(request.headers, secret)),
    )


def _has_nul(request: RequestRecord) -> bool:
    texts = (
        request.path,
        *request.params,
        *request.params.values(),
        *request.query,
        *request.query.values(),
        *request.headers,
        *request.headers.values(),
    )
    return "\x00" in "".join(texts)


# -- what the log shows ------------------------------------------------------------

_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "tokens",
        "hash",
        "credential",
        "credentials",
        "apikey",
        "privatekey",
    }
)
# A name is split into words at non-alphanumerics and camelCase humps; the
# compound words are also looked for with the separators dropped (api_key).
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_COMPOUNDS = ("apikey", "privatekey", "accesskey", "secretkey")
# Every secret name holds one of these (lower-cased), and escapes could hide
# one: JSON without any of them has nothing to redact (the fast path).
_CLUES = (
    *sorted(_SECRET_WORDS),
    *_COMPOUNDS,
    "api_key",
    "api-key",
    "private_key",
    "private-key",
    "headers",
    REDACTED,
    "\\u",
)
_CLUE_BYTES = tuple(clue.encode() for clue in _CLUES)
_decode = msgspec.json.decode
_encode = msgspec.json.encode


def secret_name(name: str) -> bool:
    """Whether a field called ``name`` holds a secret (its value never leaves):
    ``password_hash``, ``secret_hash``, ``token``, ``apiKey``, ``X-Api-Key``…"""
    words = {w.lower() for w in _WORD.findall(name)}
    if words & _SECRET_WORDS:
        return True
    compact = "".join(ch for ch in name.lower() if ch.isalnum())
    return any(c in compact for c in _COMPOUNDS)


def scrub(value: Any, headers: frozenset[str] = CREDENTIAL_HEADERS) -> Any:
    """``value`` (decoded JSON) without secret-named fields, at any depth; in
    a ``headers`` object, also without the ``headers`` named (credentials)
    and without values already redacted."""
    if isinstance(value, list):
        return [scrub(item, headers) for item in value]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for name, item in value.items():
        if secret_name(name):
            continue
        if name == "headers" and isinstance(item, dict):
            kept[name] = {
                k: v
                for k, v in item.items()
                if k.lower() not in headers and v != REDACTED and not secret_name(k)
            }
        else:
            kept[name] = scrub(item, headers)
    return kept


def public_json(raw: bytes, headers: frozenset[str] = CREDENTIAL_HEADERS) -> bytes:
    """An event's payload or metadata (JSON) as it may leave PiCloud: the one
    redaction every export uses (see the module docstring). JSON with no clue
    of a secret comes back as it is, without being parsed."""
    lowered = raw.lower()
    if not any(clue in lowered for clue in _CLUE_BYTES):
        return raw
    return _encode(scrub(_decode(raw), headers))


# -- what a run reveals ------------------------------------------------------------

_SHORTEST_SCRUBBED = 4
"""A shorter secret would blank ordinary words of a log line; such a value
is no secret anyway."""


def scrub_secrets(text: str, revealed: dict[str, str]) -> str:
    """``text`` with each secret value a run read (value → name) replaced by
    ``[secret NAME]``: a script's logs and error are recorded, its secrets not."""
    for value in sorted(revealed, key=len, reverse=True):
        if len(value) >= _SHORTEST_SCRUBBED and value in text:
            text = text.replace(value, f"[secret {revealed[value]}]")
    return text
