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

from picloud.domain.names import COLLECTION, SCRIPT_NAME, SLUG, USERNAME

__all__ = ["APP_REF", "CollectionName", "ScriptName", "Slug", "Username"]


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
