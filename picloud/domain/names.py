"""The rules for names and paths: the one place each is written down.

Each ``check_*`` returns the accepted (maybe normalised) value or raises
InvalidInput naming what is wrong. The SDK turns that into a Lua error, the
admin API into a 400; the Lua side and the OpenAPI document read the same
:class:`NameRule` (its ``pattern`` and ``max_length``), so a name accepted
in one place is accepted in all of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from picloud.errors import InvalidInput

__all__ = [
    "COLLECTION",
    "METHODS",
    "SCRIPT_NAME",
    "SECRET_NAME",
    "SLUG",
    "USERNAME",
    "NameRule",
    "check_collection",
    "check_script_name",
    "check_slug",
    "check_username",
    "normalise_path",
    "path_shape",
]


@dataclass(frozen=True)
class NameRule:
    """A name's first character, the characters after it, and its length.

    ``first`` and ``rest`` are character-class bodies that mean the same in a
    Python regex and a Lua pattern (letters, digits, ``_ . -`` only).
    """

    what: str
    first: str
    rest: str
    max_length: int
    explained: str

    @property
    def pattern(self) -> str:
        """The rule as a regular expression (Python, JSON Schema)."""
        return f"^[{self.first}][{self.rest}]{{0,{self.max_length - 1}}}$"

    @property
    def lua_pattern(self) -> str:
        """The rule as a Lua pattern, its length checked apart (``%-`` is a
        literal hyphen in a Lua class)."""
        return f"^[{_lua(self.first)}][{_lua(self.rest)}]*$"

    def check(self, value: object, *, given: object = None) -> str:
        """``value`` if it follows the rule; the error quotes ``given`` (what
        the caller wrote, before normalising) or ``value``."""
        if not isinstance(value, str) or not re.fullmatch(self.pattern, value):
            shown = str(value if given is None else given)[:80]
            raise InvalidInput(f"invalid {self.what} {shown!r}: {self.explained}")
        return value


def _lua(chars: str) -> str:
    # A trailing "-" is a literal hyphen in both; Lua wants it escaped.
    return chars[:-1] + "%-" if chars.endswith("-") else chars


COLLECTION = NameRule(
    what="collection name",
    first="A-Za-z0-9_",
    rest="A-Za-z0-9_.-",
    max_length=64,
    explained="use 1-64 letters, digits, _ . or -, starting with a letter, digit or _",
)
SCRIPT_NAME = NameRule(
    what="script name",
    first="a-zA-Z_",
    rest="a-zA-Z0-9_",
    max_length=64,
    explained="use a letter or _ then up to 63 letters, digits or _",
)
SECRET_NAME = NameRule(
    what="secret name",
    first="A-Za-z_",
    rest="A-Za-z0-9_",
    max_length=64,
    explained="use a letter or _ then up to 63 letters, digits or _ "
    "(scripts read it as secrets.NAME)",
)
USERNAME = NameRule(
    what="username",
    first="a-z0-9",
    rest="a-z0-9_.-",
    max_length=63,
    explained="use 1-63 letters, digits, '_', '.' and '-', starting with a letter "
    "or digit",
)
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
"""An app's slug: also a DNS label, for ``{slug}.{PICLOUD_DOMAIN}``."""
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_RESERVED_SLUGS = frozenset({"api", "admin", "www", "static", "dashboard", "healthz"})

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_SEGMENT = re.compile(
    r"^(?:[A-Za-z0-9._~!$&'()*+,;=:@-]+|\{[A-Za-z_][A-Za-z0-9_]{0,63}\*?\})$"
)
_PARAM = re.compile(r"\{[^}/*]*\}")
_REST = re.compile(r"\{[^}/*]*\*\}")
_MAX_PATH = 512


def check_collection(name: object) -> str:
    return COLLECTION.check(name)


def check_script_name(name: object) -> str:
    return SCRIPT_NAME.check(name)


def check_username(username: str) -> str:
    """The normalised (lower-case) username."""
    return USERNAME.check(username.lower(), given=username)


def check_slug(slug: str) -> None:
    if not SLUG.fullmatch(slug):
        raise InvalidInput(
            f"invalid slug {slug[:80]!r}: use 1-63 lowercase letters, digits and "
            "hyphens, starting and ending with a letter or digit"
        )
    if slug in _RESERVED_SLUGS or _UUID.fullmatch(slug):
        raise InvalidInput(f"the slug {slug!r} is reserved")


def normalise_path(path: str) -> str:
    """Check a route path and drop a trailing slash."""
    if not path.startswith("/"):
        raise InvalidInput(f"route path {path[:80]!r} must start with /")
    if len(path) > _MAX_PATH:
        raise InvalidInput(f"route path is longer than {_MAX_PATH} characters")
    trimmed = path.rstrip("/") or "/"
    segments = trimmed.strip("/").split("/") if trimmed != "/" else []
    names = []
    for segment in segments:
        if not _SEGMENT.fullmatch(segment):
            raise InvalidInput(
                f"route path segment {segment[:80]!r} is not allowed: use URL-safe "
                "characters, a {parameter}, or last a {rest*} that takes the rest"
            )
        if segment.startswith("{"):
            names.append(segment[1:-1].rstrip("*"))
    if any(s.endswith("*}") for s in segments[:-1]):
        raise InvalidInput(
            f"route path {path[:80]!r}: a catch-all {{name*}} must be the last segment"
        )
    if len(names) != len(set(names)):
        raise InvalidInput(f"route path {path[:80]!r} repeats a parameter name")
    return trimmed


def path_shape(path: str) -> str:
    """``/users/{id}`` → ``/users/{}``, ``/files/{path*}`` → ``/files/{*}``:
    routes with the same shape clash."""
    return _REST.sub("{*}", _PARAM.sub("{}", path))
