"""Body fields that are names, with the JSON Schema pattern of their rule in
:mod:`picloud.domain.names`: the OpenAPI document states the rule the
handlers check, from the one place it is written.

The pattern goes to the document only (``extra_json_schema``); the handlers
check names with the domain's ``check_*`` functions, whose messages say what
to do (and msgspec's regex search would let a trailing newline past ``$``).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from picloud.domain.delivery_policy import MAX_ATTEMPTS, MAX_DELAY_MS
from picloud.domain.names import COLLECTION, SCRIPT_NAME, SLUG, USERNAME
from picloud.events.app import RetryPolicy

__all__ = [
    "APP_REF",
    "CollectionName",
    "RetryBody",
    "ScriptName",
    "Slug",
    "Username",
]


def _matching(pattern: str, **more: Any) -> msgspec.Meta:
    return msgspec.Meta(extra_json_schema={"pattern": pattern}, **more)


Slug = Annotated[str, _matching(SLUG.pattern)]
ScriptName = Annotated[str, _matching(SCRIPT_NAME.pattern)]
CollectionName = Annotated[str, _matching(COLLECTION.pattern)]
Username = Annotated[str, _matching(USERNAME.pattern, max_length=200)]

APP_REF: dict[str, Any] = {
    "type": "string",
    "anyOf": [{"pattern": SLUG.pattern}, {"format": "uuid"}],
    "description": "the app's slug or id",
}
"""The ``{app}`` path parameter."""


_Delay = Annotated[int, msgspec.Meta(ge=1, le=MAX_DELAY_MS)]


class RetryBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A retry policy: each field left out is the deployment's default
    (``PICLOUD_TRIGGER_RETRY_*``)."""

    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=MAX_ATTEMPTS)] | None = None
    base_ms: _Delay | None = None
    """The pause before the first retry; it doubles for each next one."""
    max_ms: _Delay | None = None
    """The longest pause."""
    jitter: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] | None = None
    """Each pause varies by ± this fraction."""

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            base_ms=self.base_ms,
            max_ms=self.max_ms,
            jitter=self.jitter,
        )
