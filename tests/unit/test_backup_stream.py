"""The backup file format: authenticated, chunked, refuses tampering and truncation."""

import io
import os

import pytest

from gateway.adapters.backup import stream
from gateway.adapters.backup.stream import BackupFormatError, decrypt, encrypt

KEY = os.urandom(32)


def roundtrip(data: bytes, key: bytes = KEY) -> bytes:
    sealed = io.BytesIO()
    encrypt(io.BytesIO(data), sealed, KEY)
    out = io.BytesIO()
    decrypt(io.BytesIO(sealed.getvalue()), out, key)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, stream.CHUNK - 1, stream.CHUNK, 2 * stream.CHUNK + 7])
def test_roundtrip_at_chunk_boundaries(size: int) -> None:
    data = os.urandom(size)
    assert roundtrip(data) == data


def sealed_of(data: bytes) -> bytes:
    sink = io.BytesIO()
    encrypt(io.BytesIO(data), sink, KEY)
    return sink.getvalue()


def test_ciphertext_does_not_show_the_plaintext() -> None:
    secret = b"customer@example.org " * 1000
    assert b"customer@example.org" not in sealed_of(secret)


def test_wrong_key_is_refused() -> None:
    with pytest.raises(BackupFormatError, match="wrong"):
        roundtrip(b"data", key=os.urandom(32))


def test_truncation_at_a_chunk_boundary_is_refused() -> None:
    sealed = sealed_of(os.urandom(stream.CHUNK * 2 + 10))
    first_chunk_end = len(stream.MAGIC) + 16 + 5 + stream.CHUNK + 16
    with pytest.raises(BackupFormatError, match="truncated"):
        decrypt(io.BytesIO(sealed[:first_chunk_end]), io.BytesIO(), KEY)


def test_flipped_bit_is_refused() -> None:
    sealed = bytearray(sealed_of(b"x" * 1000))
    sealed[-3] ^= 1
    with pytest.raises(BackupFormatError):
        decrypt(io.BytesIO(bytes(sealed)), io.BytesIO(), KEY)


def test_other_files_are_refused() -> None:
    with pytest.raises(BackupFormatError, match="not a Packetra backup"):
        decrypt(io.BytesIO(b"SQLite format 3\x00" + b"\x00" * 100), io.BytesIO(), KEY)
