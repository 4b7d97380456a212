"""Personal fields at rest: AES-256-GCM with the record id as associated data, and a keyed
HMAC blind index for lookups. Each ciphertext names its key, so keys rotate in place."""

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"


class FieldCipherError(Exception):
    pass


class FieldCipher:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        """`keys`: (key id, 32-byte key), newest first; the newest encrypts."""
        if not keys:
            raise ValueError("at least one data key is required")
        for kid, key in keys:
            if len(key) != 32:
                raise ValueError(f"data key {kid!r} must be 32 bytes")
            if not kid or len(kid.encode()) > 255:
                raise ValueError("data key id must be 1-255 bytes")
        self._primary = keys[0][0]
        self._keys = {kid: AESGCM(key) for kid, key in keys}

    def encrypt(self, plaintext: str, record_id: str) -> bytes:
        kid = self._primary.encode()
        nonce = os.urandom(12)
        sealed = self._keys[self._primary].encrypt(nonce, plaintext.encode(), record_id.encode())
        return _VERSION + bytes([len(kid)]) + kid + nonce + sealed

    def decrypt(self, blob: bytes, record_id: str) -> str:
        if not blob or blob[:1] != _VERSION:
            raise FieldCipherError("unknown ciphertext format")
        klen = blob[1]
        kid = blob[2 : 2 + klen].decode()
        nonce = blob[2 + klen : 14 + klen]
        sealed = blob[14 + klen :]
        aead = self._keys.get(kid)
        if aead is None:
            raise FieldCipherError(f"data key {kid!r} is not configured")
        try:
            return aead.decrypt(nonce, sealed, record_id.encode()).decode()
        except InvalidTag:
            raise FieldCipherError("ciphertext does not authenticate") from None

    def encrypt_optional(self, plaintext: str | None, record_id: str) -> bytes | None:
        return None if plaintext is None else self.encrypt(plaintext, record_id)

    def decrypt_optional(self, blob: bytes | None, record_id: str) -> str | None:
        return None if blob is None else self.decrypt(blob, record_id)


class BlindIndex:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("index key must be at least 32 bytes")
        self._key = key

    def __call__(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()
