"""Secrets and their hashes: passwords, API keys, session tokens. No I/O.

Guarantees:
- Passwords are hashed with argon2id (RFC 9106 low-memory profile: 64 MiB,
  t=3, p=4) through ``argon2-cffi``; only the encoded hash is ever stored.
  :func:`verify_password` costs the same whether or not a user exists: callers
  verify against :func:`dummy_hash` when there is no user.
- API keys are ``pic_`` + 43 url-safe characters (256 random bits). Such a
  secret cannot be guessed, so an unsalted SHA-256 is a safe lookup hash for
  it; the first characters (:data:`KEY_PREFIX_LEN`) are kept visibly so a
  user can tell keys apart in a list.
- Session tokens are 256 random bits; the database keeps their SHA-256. The
  CSRF token of a session is derived from its token, so it needs no storage
  and is worthless without the session.
- Nothing here logs; nothing returns a secret except the functions that
  create one.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from picloud.errors import InvalidInput

__all__ = [
    "KEY_PREFIX_LEN",
    "MAX_PASSWORD_LEN",
    "MIN_PASSWORD_LEN",
    "NewKey",
    "check_password",
    "csrf_token_for",
    "dummy_hash",
    "hash_key",
    "hash_password",
    "hash_token",
    "looks_like_key",
    "needs_rehash",
    "new_api_key",
    "new_session_token",
    "same_secret",
    "verify_password",
]

MIN_PASSWORD_LEN = 8
MAX_PASSWORD_LEN = 1024
KEY_PREFIX_LEN = 12
_KEY_MARK = "pic_"
_KEY_LEN = len(_KEY_MARK) + 43

_hasher = PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)


def check_password(password: str) -> None:
    """Refuse a password too short to resist guessing or too long to hash cheaply."""
    if len(password) < MIN_PASSWORD_LEN:
        raise InvalidInput(f"password: use at least {MIN_PASSWORD_LEN} characters")
    if len(password) > MAX_PASSWORD_LEN:
        raise InvalidInput(f"password: use at most {MAX_PASSWORD_LEN} characters")


def hash_password(password: str) -> str:
    """The argon2id encoded hash (salt and parameters included). CPU-heavy:
    call it off the event loop (``asyncio.to_thread``)."""
    check_password(password)
    return _hasher.hash(password)


def verify_password(encoded: str, password: str) -> bool:
    """Whether ``password`` matches ``encoded``; a malformed hash is a mismatch."""
    try:
        return _hasher.verify(encoded, password[:MAX_PASSWORD_LEN])
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(encoded: str) -> bool:
    """The hash was made with other parameters than today's."""
    try:
        return _hasher.check_needs_rehash(encoded)
    except InvalidHashError:
        return True


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password with today's parameters, to verify against
    when the user does not exist, so that both answers take the same time."""
    return _hasher.hash(secrets.token_urlsafe(32))


class NewKey:
    """A freshly made API key: the secret (shown once) and what is stored."""

    __slots__ = ("hash", "prefix", "secret")

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.prefix = secret[:KEY_PREFIX_LEN]
        self.hash = hash_key(secret)

    def __repr__(self) -> str:  # never show the secret, even in a traceback
        return f"NewKey(prefix={self.prefix!r})"


def new_api_key() -> NewKey:
    return NewKey(_KEY_MARK + secrets.token_urlsafe(32))


def hash_key(secret: str) -> str:
    """The lookup hash of an API key (hex SHA-256)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_key(secret: str) -> bool:
    """Cheap shape check before any lookup."""
    return len(secret) == _KEY_LEN and secret.startswith(_KEY_MARK)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a session token (hex SHA-256)."""
    return hashlib.sha256(b"session\0" + token.encode()).hexdigest()


def csrf_token_for(session_token: str) -> str:
    """The CSRF token of a session: unguessable without the session cookie."""
    return hashlib.sha256(b"csrf\0" + session_token.encode()).hexdigest()


def same_secret(a: str, b: str) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(a.encode(), b.encode())
