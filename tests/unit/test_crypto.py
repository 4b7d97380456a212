import asyncio
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from gateway.adapters.fields import BlindIndex, FieldCipher, FieldCipherError, FieldRef
from gateway.adapters.passwords import Argon2Passwords
from gateway.adapters.tokens import SessionTokens, hash_api_key, new_api_key
from gateway.services.errors import ServiceUnavailable, Unauthorized

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_field_encryption_roundtrip_and_binding() -> None:
    cipher = FieldCipher([("k1", os.urandom(32))])
    here = FieldRef("accounts.email_ct", "acc_1")
    blob = cipher.encrypt("alice@example.org", here)
    assert b"alice" not in blob
    assert cipher.decrypt(blob, here) == "alice@example.org"
    assert cipher.encrypt("alice@example.org", here) != blob  # random nonce
    with pytest.raises(FieldCipherError):
        cipher.decrypt(blob, FieldRef("accounts.email_ct", "acc_2"))  # no copy-paste
    with pytest.raises(FieldCipherError):
        cipher.decrypt(blob[:-1] + bytes([blob[-1] ^ 1]), here)


def test_key_rotation_keeps_old_records_readable() -> None:
    old = ("k1", os.urandom(32))
    ref = FieldRef("t.c_ct", "r")
    blob = FieldCipher([old]).encrypt("x", ref)
    rotated = FieldCipher([("k2", os.urandom(32)), old])
    assert rotated.decrypt(blob, ref) == "x"
    assert b"k2" in rotated.encrypt("x", ref)[:4]
    with pytest.raises(FieldCipherError, match="not configured"):
        FieldCipher([("k3", os.urandom(32))]).decrypt(blob, ref)


def test_blind_index_is_keyed_and_deterministic() -> None:
    a, b = BlindIndex(os.urandom(32)), BlindIndex(os.urandom(32))
    assert a("x@y.org") == a("x@y.org") != b("x@y.org")


async def test_passwords_argon2id_owasp_parameters() -> None:
    pw = Argon2Passwords()
    stored = await pw.hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await pw.verify(stored, "correct horse battery")
    assert not await pw.verify(stored, "wrong password!")
    assert not await pw.verify(None, "anything at all")
    assert Argon2Passwords(time_cost=3).needs_rehash(stored)
    pw.close()


async def test_hashing_leaves_the_event_loop_free_and_is_capped() -> None:
    """Hashes run in threads, at most `concurrency` at once: the loop keeps ticking while
    eight of them run."""
    pw = Argon2Passwords(concurrency=2, max_waiting=16)
    running, peak = [0], [0]
    lock = threading.Lock()
    real = pw._verify

    def counted(stored: str | None, password: str) -> bool:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            return real(stored, password)
        finally:
            with lock:
                running[0] -= 1

    pw._verify = counted  # type: ignore[method-assign]
    stored = await pw.hash("correct horse battery")
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    results = await asyncio.gather(*(pw.verify(stored, "wrong password!") for _ in range(8)))
    done.set()
    await tick
    assert results == [False] * 8
    assert peak[0] == 2
    # One hash takes ~20 ms of CPU; on the loop, eight would stall it for 160 ms.
    assert len(gaps) > 10 and max(gaps) < 0.1, max(gaps)
    pw.close()


async def test_too_many_waiting_hashes_get_busy_with_retry_after() -> None:
    pw = Argon2Passwords(concurrency=1, max_waiting=2, max_wait_seconds=5)
    results = await asyncio.gather(*(pw.hash("a password") for _ in range(5)),
                                   return_exceptions=True)
    busy = [r for r in results if isinstance(r, ServiceUnavailable)]
    assert len(busy) == 2  # one running, two waiting, the rest refused at once
    assert all(b.retry_after_seconds > 0 for b in busy)
    slow = Argon2Passwords(concurrency=1, max_waiting=8, max_wait_seconds=0.001)
    results = await asyncio.gather(*(slow.hash("a password") for _ in range(3)),
                                   return_exceptions=True)
    assert sum(isinstance(r, ServiceUnavailable) for r in results) == 2  # waited too long
    assert await slow.hash("a password")  # the slots came back
    pw.close()
    slow.close()


def tokens() -> SessionTokens:
    return SessionTokens(b"k" * 32, "https://gw.test")


def test_session_token_roundtrip() -> None:
    token = tokens().issue("acc_1", "ses_1", NOW, NOW + timedelta(hours=1))
    claims = tokens().decode(token, NOW + timedelta(minutes=5))
    assert (claims.account_id, claims.session_id) == ("acc_1", "ses_1")


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: jwt.encode({"sub": "acc_1", "jti": "s", "iat": 1, "exp": 2**40,
                              "aud": "packetra-gateway", "iss": "https://gw.test"},
                             None, algorithm="none"),
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: jwt.encode({"sub": "acc_1", "jti": "s", "iat": 1, "exp": 2**40,
                              "aud": "someone-else", "iss": "https://gw.test"},
                             b"k" * 32, algorithm="HS256"),
        lambda t: jwt.encode({"sub": "acc_1", "iat": 1, "exp": 2**40,
                              "aud": "packetra-gateway", "iss": "https://gw.test"},
                             b"k" * 32, algorithm="HS256"),
    ],
    ids=["alg-none", "tampered", "wrong-audience", "no-jti"],
)
def test_forged_tokens_are_refused(forge: object) -> None:
    token = tokens().issue("acc_1", "ses_1", NOW, NOW + timedelta(hours=1))
    with pytest.raises(Unauthorized):
        tokens().decode(forge(token), NOW)  # type: ignore[operator]


def test_expired_token_is_refused() -> None:
    token = tokens().issue("acc_1", "ses_1", NOW, NOW + timedelta(hours=1))
    with pytest.raises(Unauthorized):
        tokens().decode(token, NOW + timedelta(hours=2))


def test_api_keys_are_prefixed_and_hashed() -> None:
    key = new_api_key()
    assert key.startswith("gk_") and len(key) > 40
    assert hash_api_key(key) != key and len(hash_api_key(key)) == 64
