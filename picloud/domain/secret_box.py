"""Sealing apps' secrets: AES-256-GCM, bound to the app and the name.

Pure (no I/O); the key comes from :class:`~picloud.config.Settings`
(``PICLOUD_SECRET_KEY``, else the one generated into the data directory:
:mod:`picloud.hosting.secret_key`). A sealed value is ``base64(nonce ||
ciphertext || tag)`` with a fresh 96-bit random nonce; the associated data
``app_id/name`` makes a ciphertext copied to another app or name fail to
open. ``key_id`` (the first 16 hex digits of the key's SHA-256) tells which
key sealed a value, so a wrong or rotated key is named, not a garbled value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from picloud.errors import ConfigError, SdkCallError

__all__ = ["SecretBox", "new_key"]

_NONCE = 12


def new_key() -> str:
    """A fresh key, as ``PICLOUD_SECRET_KEY`` takes it (base64 of 32 bytes)."""
    return base64.b64encode(os.urandom(32)).decode()


class SecretBox:
    """Seals and opens the secrets of every app with one key."""

    def __init__(self, key: str | None) -> None:
        if not key:
            raise ConfigError("no secret key: set PICLOUD_SECRET_KEY")
        try:
            raw = base64.b64decode(key, validate=True)
        except binascii.Error:
            raw = b""
        if len(raw) != 32:
            raise ConfigError("PICLOUD_SECRET_KEY must be base64 of 32 random bytes")
        self._aead = AESGCM(raw)
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]

    def seal(self, app_id: str, name: str, value: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, value.encode(), _bound(app_id, name))
        return base64.b64encode(nonce + sealed).decode()

    def open(self, app_id: str, name: str, ciphertext: str, key_id: str) -> str:
        """The value; SdkCallError (a script's error) if this key cannot open it."""
        if key_id != self.key_id:
            raise SdkCallError(
                f"secret {name!r} was sealed with another key ({key_id}); "
                "set it again, or start PiCloud with that PICLOUD_SECRET_KEY"
            )
        data = base64.b64decode(ciphertext)
        try:
            clear = self._aead.decrypt(
                data[:_NONCE], data[_NONCE:], _bound(app_id, name)
            )
        except InvalidTag:
            raise SdkCallError(f"secret {name!r} does not open (tampered?)") from None
        return clear.decode()


def _bound(app_id: str, name: str) -> bytes:
    return f"{app_id}/{name}".encode()
