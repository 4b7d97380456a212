"""Personal fields at rest: AES-256-GCM bound to where the value lives, and a keyed HMAC
blind index for lookups. Each ciphertext names its key, so keys rotate in place.

A ciphertext is `version | key id length | key id | nonce (12) | sealed`. Its version
says what it was bound to (the associated data):

- 2 (written now): the header (version and key id), the column ("table.column") and the
  record id. Moved to another column, another row or under another key id, it does not
  authenticate.
- 1 (written before): the record id alone, or the string its caller used then (see
  `FieldRef.legacy`). Such a value could be moved between the columns of one row, so it
  is read only while `read_legacy` is on, and `gateway keys rotate-data` rewrites it as
  version 2.
"""

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

LEGACY = 1
CURRENT = 2
_NONCE = 12


class FieldCipherError(Exception):
    """A ciphertext that cannot be read: its key is not configured, its format is not
    accepted, or it does not authenticate where it was found. The message names the
    column and record, never the value."""


@dataclass(frozen=True)
class FieldRef:
    """Where a ciphertext lives: `column` is "table.column", `record` the id of the
    record it belongs to. `legacy`: what version 1 bound it to, when not `record`."""

    column: str
    record: str
    legacy: str | None = None

    def associated_data(self, header: bytes) -> bytes:
        # The column holds no NUL, so column and record cannot be re-split another way.
        return header + self.column.encode() + b"\x00" + self.record.encode()

    def legacy_associated_data(self) -> bytes:
        return (self.record if self.legacy is None else self.legacy).encode()

    def __str__(self) -> str:
        return f"{self.column} of {self.record}"


@dataclass(frozen=True)
class BlobHeader:
    version: int
    key_id: str
    length: int  # bytes before the nonce


def blob_header(blob: bytes) -> BlobHeader | None:
    """The version and key id a ciphertext names; None when it is not one of ours."""
    if len(blob) < 2 or blob[0] not in (LEGACY, CURRENT):
        return None
    klen = blob[1]
    if klen == 0 or len(blob) < 2 + klen + _NONCE + 16:
        return None
    try:
        kid = blob[2:2 + klen].decode()
    except UnicodeDecodeError:
        return None
    return BlobHeader(blob[0], kid, 2 + klen)


def header_bytes(version: int, key_id: str) -> bytes:
    kid = key_id.encode()
    return bytes([version, len(kid)]) + kid


class FieldCipher:
    def __init__(self, keys: list[tuple[str, bytes]], read_legacy: bool = True) -> None:
        """`keys`: (key id, 32-byte key), newest first; the newest encrypts.
        `read_legacy`: version 1 ciphertexts are read (until all are rewritten)."""
        if not keys:
            raise ValueError("at least one data key is required")
        for kid, key in keys:
            if len(key) != 32:
                raise ValueError(f"data key {kid!r} must be 32 bytes")
            if not kid or len(kid.encode()) > 255:
                raise ValueError("data key id must be 1-255 bytes")
        ids = [kid for kid, _ in keys]
        if len(set(ids)) != len(ids):
            # One id for two keys would seal new values with whichever came last under
            # the newest id: rotate-data would find nothing to do, and retiring an entry
            # would make them unreadable.
            twice = sorted({kid for kid in ids if ids.count(kid) > 1})
            raise ValueError(f"data key id {twice[0]!r} is used by two keys: each key "
                             "needs an id of its own")
        self._primary = keys[0][0]
        self._keys = {kid: AESGCM(key) for kid, key in keys}
        self.read_legacy = read_legacy

    @property
    def primary_key_id(self) -> str:
        return self._primary

    def current_prefix(self) -> bytes:
        """What every ciphertext written now starts with: one that does not is older
        (another format or key) and `gateway keys rotate-data` rewrites it."""
        return header_bytes(CURRENT, self._primary)

    def is_current(self, blob: bytes) -> bool:
        return blob.startswith(self.current_prefix())

    def encrypt(self, plaintext: str, ref: FieldRef) -> bytes:
        header = self.current_prefix()
        nonce = os.urandom(_NONCE)
        sealed = self._keys[self._primary].encrypt(
            nonce, plaintext.encode(), ref.associated_data(header))
        return header + nonce + sealed

    def decrypt(self, blob: bytes, ref: FieldRef) -> str:
        head = blob_header(blob)
        if head is None:
            raise FieldCipherError(f"{ref}: not a ciphertext of a known format")
        aead = self._keys.get(head.key_id)
        if aead is None:
            raise FieldCipherError(f"{ref}: data key {head.key_id!r} is not configured")
        if head.version == LEGACY:
            if not self.read_legacy:
                raise FieldCipherError(
                    f"{ref}: written in format 1 (bound to the record only), which "
                    "[security] read_legacy_ciphertexts = false refuses")
            associated = ref.legacy_associated_data()
        else:
            associated = ref.associated_data(blob[:head.length])
        nonce = blob[head.length:head.length + _NONCE]
        try:
            return aead.decrypt(nonce, blob[head.length + _NONCE:], associated).decode()
        except InvalidTag:
            # Never a guess at another binding: a value moved here from elsewhere must
            # not be read as if it belonged here.
            raise FieldCipherError(
                f"{ref}: ciphertext does not authenticate here (altered, or moved from "
                "another column or record)") from None

    def encrypt_optional(self, plaintext: str | None, ref: FieldRef) -> bytes | None:
        return None if plaintext is None else self.encrypt(plaintext, ref)

    def decrypt_optional(self, blob: bytes | None, ref: FieldRef) -> str | None:
        return None if blob is None else self.decrypt(blob, ref)

    def reseal(self, blob: bytes, ref: FieldRef) -> bytes:
        """The same value under the newest key, in the current format."""
        return self.encrypt(self.decrypt(blob, ref), ref)


class BlindIndex:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("index key must be at least 32 bytes")
        self._key = key

    def __call__(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()
