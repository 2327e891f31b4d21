"""The one exception tree of PiCloud.

::

    PiCloudError
    ├── ConfigError                      a malformed PICLOUD_* setting
    ├── StoreError                       Postgres, migrations, the event log
    │   ├── MigrationError               a changed or broken migration
    │   ├── VersionConflict              append with a stale expected version
    │   ├── UnknownEvent                 a stored event this version cannot decode
    │   ├── UnstorableValue              Postgres refused a value of one command
    │   └── StoreUnavailable             the database cannot be reached
    ├── ScriptError                      the Lua sandbox (picloud.scripting)
    │   ├── ScriptSyntaxError            found at save time: line and message
    │   ├── ScriptPreempted              outran its slice on the event loop (internal)
    │   ├── ScriptRuntimeError           raised while a script runs
    │   │   └── ScriptLimitExceeded      a named limit was hit
    │   │       └── ScriptTimeout        the time limit (also a TimeoutError)
    │   ├── ModuleError                  require(): unknown, cycle, depth, shape
    │   │   └── ModuleShapeError         top-level code in a module: line and reason
    │   └── SdkCallError                 an SDK operation refused; fails the Lua call
    ├── ActorError                       hosting, placement, commands
    │   ├── ActorUnavailable             the host did not answer
    │   │   └── NotPlacedHere            the app is placed elsewhere now: not run
    │   └── CommandTimeout               the caller's deadline passed
    ├── AuthError                        identity and access
    │   ├── Unauthenticated              no or bad credentials (401)
    │   └── Forbidden                    not allowed (403)
    └── RequestError                     the caller's mistake (4xx)
        ├── InvalidInput                 400
        ├── NotFound                     404
        ├── MethodNotAllowed             405
        ├── RequestTimeout               408: the body did not arrive in time
        ├── Conflict                     409
        ├── PayloadTooLarge              413
        └── TooManyRequests              429, with the seconds to wait

Every error has a snake_case ``code`` and a human ``message``; the HTTP layer
maps classes to statuses and renders ``{"error": {"code", "message"}}``.
Foreign exceptions (asyncpg, Ray, lupa) are translated at one choke point per
package and never escape it.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ActorError",
    "ActorUnavailable",
    "AuthError",
    "CommandTimeout",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "MethodNotAllowed",
    "MigrationError",
    "ModuleError",
    "ModuleShapeError",
    "NotFound",
    "NotPlacedHere",
    "PayloadTooLarge",
    "PiCloudError",
    "RequestError",
    "RequestTimeout",
    "ScriptError",
    "ScriptLimitExceeded",
    "ScriptPreempted",
    "ScriptRuntimeError",
    "ScriptSyntaxError",
    "ScriptTimeout",
    "SdkCallError",
    "StoreError",
    "StoreUnavailable",
    "TooManyRequests",
    "Unauthenticated",
    "UnknownEvent",
    "UnstorableValue",
    "VersionConflict",
]


class PiCloudError(Exception):
    """Root of every error PiCloud raises on purpose."""

    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # type: ignore[misc]  # per-instance refinement of the class code


class ConfigError(PiCloudError):
    code = "invalid_setting"


# -- store ----------------------------------------------------------------------


class StoreError(PiCloudError):
    code = "store_error"


class MigrationError(StoreError):
    code = "migration_error"


class VersionConflict(StoreError):
    """An append stated an expected stream version that is no longer current."""

    code = "version_conflict"

    def __init__(self, stream: str, expected: int) -> None:
        super().__init__(f"stream {stream!r} is past version {expected}")
        self.stream = stream
        self.expected = expected


class UnknownEvent(StoreError):
    """A stored event this version of PiCloud cannot decode (a newer one wrote it)."""

    code = "unknown_event"

    def __init__(self, position: int, detail: str) -> None:
        super().__init__(f"event at position {position} cannot be decoded: {detail}")
        self.position = position


class UnstorableValue(StoreError):
    """Postgres refused a value (a data or constraint error): the fault of the
    command that wrote it, not of the others appended with it."""

    code = "unstorable_value"


class StoreUnavailable(StoreError):
    """The database cannot be reached now; the caller may retry.

    ``message`` is the same for every cause (a client learns nothing of the
    driver); ``cause`` says why in a few words of ours, for health checks and
    logs (``"connection refused"``, ``"the database is starting up"``).
    """

    code = "store_unavailable"
    cause: str = "unknown"

    def __init__(
        self, message: str = "the database is unavailable; retry", *, cause: str = ""
    ) -> None:
        super().__init__(message)
        if cause:
            self.cause = cause

    def __str__(self) -> str:
        # For logs and the operator; clients get ``message`` alone.
        known = self.cause != StoreUnavailable.cause
        return f"{self.message} ({self.cause})" if known else self.message


# -- scripts ----------------------------------------------------------------------


class ScriptError(PiCloudError):
    code = "script_error"


class ScriptSyntaxError(ScriptError):
    """The source does not compile; ``line`` is 1-based (0 when unknown)."""

    code = "script_syntax_error"

    def __init__(self, message: str, *, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


class ScriptPreempted(ScriptError):
    """An invocation run on the host's event loop outran its slice and was
    stopped before any effect left it; the host runs it again on a worker
    thread. Never shown to a caller."""

    code = "script_preempted"


class ScriptRuntimeError(ScriptError):
    code = "script_runtime_error"


class ScriptLimitExceeded(ScriptRuntimeError):
    """A sandbox limit was hit; ``limit`` names it (e.g. ``"instructions"``)."""

    code = "script_limit_exceeded"

    def __init__(self, limit: str, message: str | None = None) -> None:
        super().__init__(message or f"script exceeded the {limit} limit")
        self.limit = limit


class ScriptTimeout(ScriptLimitExceeded, TimeoutError):
    code = "script_timeout"

    def __init__(self, message: str | None = None) -> None:
        super().__init__("time", message)


class ModuleError(ScriptError):
    code = "module_error"


class ModuleShapeError(ModuleError):
    """A module holds more than definitions at top level; ``line`` is 1-based
    (0 when unknown)."""

    code = "module_shape_error"

    def __init__(self, message: str, *, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


class SdkCallError(ScriptError):
    """Raised by an SDK handler: the script's SDK call fails with this message."""

    code = "sdk_call_error"


# -- actors -----------------------------------------------------------------------


class ActorError(PiCloudError):
    code = "actor_error"


class ActorUnavailable(ActorError):
    code = "unavailable"


class NotPlacedHere(ActorUnavailable):
    """A host refused a call for an app that placement moved away from it (or
    for any app, once the host is leaving): the call did not run, so it may
    be sent again, to the app's new host."""


class CommandTimeout(ActorError, TimeoutError):
    code = "timeout"


# -- identity -------------------------------------------------------------------------


class AuthError(PiCloudError):
    code = "auth_error"


class Unauthenticated(AuthError):
    code = "unauthenticated"


class Forbidden(AuthError):
    code = "forbidden"


# -- the caller's mistakes ----------------------------------------------------


class RequestError(PiCloudError):
    code = "bad_request"


class InvalidInput(RequestError):
    code = "invalid_input"


class NotFound(RequestError):
    code = "not_found"


class MethodNotAllowed(RequestError):
    code = "method_not_allowed"


class RequestTimeout(RequestError):
    """The request's body did not arrive within the read timeout."""

    code = "request_timeout"


class Conflict(RequestError):
    code = "conflict"


class PayloadTooLarge(RequestError):
    code = "payload_too_large"


class TooManyRequests(RequestError):
    """Slow down: try again after ``retry_after`` seconds (login throttling)."""

    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
