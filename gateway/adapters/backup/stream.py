"""Streaming authenticated encryption for backup files, so their size is never bounded by
memory.

Layout: MAGIC, 16-byte salt, then chunks of (1-byte last flag, 4-byte length, ciphertext).
Each file gets its own AES-256-GCM key, HKDF-derived from the backup key and the salt; the
nonce is the chunk counter plus the last flag, so chunks cannot be reordered, dropped or
appended, and a truncated file is refused (the STREAM construction of Hoang et al.)."""

import os
import struct
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"PKTRBAK1"
CHUNK = 1 << 20
_HEAD = struct.Struct(">BI")


class BackupFormatError(Exception):
    """Not a backup of ours, the wrong key, or a damaged or truncated file."""


def _cipher(key: bytes, salt: bytes) -> AESGCM:
    if len(key) != 32:
        raise ValueError("the backup key must be 32 bytes")
    derived = HKDF(hashes.SHA256(), 32, salt, b"packetra backup v1").derive(key)
    return AESGCM(derived)


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def encrypt(source: BinaryIO, sink: BinaryIO, key: bytes) -> None:
    salt = os.urandom(16)
    aead = _cipher(key, salt)
    header = MAGIC + salt
    sink.write(header)
    counter = 0
    chunk = source.read(CHUNK)
    while True:
        following = source.read(CHUNK)
        last = not following
        sealed = aead.encrypt(_nonce(counter, last), chunk, header)
        sink.write(_HEAD.pack(int(last), len(sealed)) + sealed)
        if last:
            return
        chunk, counter = following, counter + 1


def decrypt(source: BinaryIO, sink: BinaryIO, key: bytes) -> None:
    header = source.read(len(MAGIC) + 16)
    if len(header) != len(MAGIC) + 16 or not header.startswith(MAGIC):
        raise BackupFormatError("not a Packetra backup file")
    aead = _cipher(key, header[len(MAGIC):])
    counter = 0
    while True:
        head = source.read(_HEAD.size)
        if len(head) != _HEAD.size:
            raise BackupFormatError("the backup file is truncated")
        last, length = _HEAD.unpack(head)
        if length > CHUNK + 16:
            raise BackupFormatError("the backup file is damaged")
        sealed = source.read(length)
        try:
            sink.write(aead.decrypt(_nonce(counter, bool(last)), sealed, header))
        except InvalidTag:
            raise BackupFormatError(
                "the backup cannot be decrypted: wrong [backup] key, or a damaged file"
            ) from None
        if last:
            if source.read(1):
                raise BackupFormatError("the backup file has data after its end")
            return
        counter += 1
