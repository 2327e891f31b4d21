"""Fields several forms share: a retry policy (routes and triggers)."""

from __future__ import annotations

from typing import Any

from picloud.errors import InvalidInput
from picloud.http.dashboard._table import Form

__all__ = ["RETRY_FIELDS", "retry_of"]

RETRY_FIELDS = ("max_attempts", "base_ms", "max_ms", "jitter")


def retry_of(form: Form) -> dict[str, Any] | None:
    """The form's ``retry_*`` fields as the API's ``retry`` body (numbers;
    an empty field is left out, the deployment's default); None when every
    one is empty. The API's own checks apply to what it holds."""
    values: dict[str, Any] = {}
    for name in RETRY_FIELDS:
        text = str(form.get(f"retry_{name}", "")).strip()
        if not text:
            continue
        try:
            values[name] = float(text) if name == "jitter" else int(text)
        except ValueError:
            kind = "a fraction from 0 to 1" if name == "jitter" else "a whole number"
            raise InvalidInput(f"retry.{name} must be {kind}") from None
    return values or None
