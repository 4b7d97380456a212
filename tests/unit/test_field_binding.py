"""Issue 27, item 18: a personal field's ciphertext is bound to its table, column and
record (format 2). Moved anywhere else it does not decrypt; values written before
(format 1, bound to the record id alone) still read, and `rotate-data`'s per-row step
moves them to the newest key and format."""

import os
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.adapters.db import encrypted
from gateway.adapters.db.field_rotation import RotationPolicy, reseal_row
from gateway.adapters.db.tables import metadata
from gateway.adapters.fields import FieldCipher, FieldCipherError, FieldRef, blob_header

OLD = ("k1", os.urandom(32))
NEW = ("k2", os.urandom(32))


def format1(key: tuple[str, bytes], plaintext: str, associated: str) -> bytes:
    """A ciphertext as versions before format 2 wrote it (record id as associated data)."""
    kid, raw = key
    nonce = os.urandom(12)
    sealed = AESGCM(raw).encrypt(nonce, plaintext.encode(), associated.encode())
    return b"\x01" + bytes([len(kid)]) + kid.encode() + nonce + sealed


def test_a_ciphertext_moved_to_another_column_of_its_row_does_not_decrypt() -> None:
    cipher = FieldCipher([NEW])
    email = cipher.encrypt("alice@example.org", encrypted.ACCOUNT_EMAIL.ref("acc_1"))
    name = cipher.encrypt("Alice", encrypted.ACCOUNT_DISPLAY_NAME.ref("acc_1"))
    assert cipher.decrypt(email, encrypted.ACCOUNT_EMAIL.ref("acc_1")) == "alice@example.org"
    # Swapped: each now sits in the other's column of the same row.
    with pytest.raises(FieldCipherError, match=r"accounts\.display_name_ct of acc_1"):
        cipher.decrypt(email, encrypted.ACCOUNT_DISPLAY_NAME.ref("acc_1"))
    with pytest.raises(FieldCipherError, match="moved from another column or record"):
        cipher.decrypt(name, encrypted.ACCOUNT_EMAIL.ref("acc_1"))
    # Same column name, other table; and the mail queue's three columns of one row.
    with pytest.raises(FieldCipherError):
        cipher.decrypt(cipher.encrypt("s", encrypted.STAFF_TOTP.ref("acc_1")),
                       encrypted.ACCOUNT_TOTP.ref("acc_1"))
    body = cipher.encrypt("reset link", encrypted.MAIL_BODY.ref("mail_1"))
    with pytest.raises(FieldCipherError):
        cipher.decrypt(body, encrypted.MAIL_RECIPIENT.ref("mail_1"))


def test_a_ciphertext_moved_to_another_row_does_not_decrypt() -> None:
    cipher = FieldCipher([NEW])
    blob = cipher.encrypt("alice@example.org", encrypted.ACCOUNT_EMAIL.ref("acc_1"))
    with pytest.raises(FieldCipherError):
        cipher.decrypt(blob, encrypted.ACCOUNT_EMAIL.ref("acc_2"))
    # Column and record are separated unambiguously: "a.b" + "c" is not "a" + ".bc".
    joined = cipher.encrypt("x", FieldRef("t.ab", "c"))
    with pytest.raises(FieldCipherError):
        cipher.decrypt(joined, FieldRef("t.a", "bc"))


def test_the_header_is_authenticated() -> None:
    both = FieldCipher([NEW, ("k3", NEW[1])])  # one key under two ids
    ref = FieldRef("accounts.email_ct", "acc_1")
    blob = both.encrypt("alice@example.org", ref)
    head = blob_header(blob)
    assert head is not None and head.version == 2 and head.key_id == "k2"
    renamed = b"\x02\x02k3" + blob[head.length:]
    with pytest.raises(FieldCipherError):
        both.decrypt(renamed, ref)
    # Labelled format 1, a format 2 ciphertext fails (it was not sealed for the record id).
    with pytest.raises(FieldCipherError):
        both.decrypt(b"\x01" + blob[1:], ref)
    with pytest.raises(FieldCipherError, match="known format"):
        both.decrypt(b"\x07" + blob[1:], ref)
    with pytest.raises(FieldCipherError, match="known format"):
        both.decrypt(b"", ref)


def test_format_1_still_reads_with_the_associated_data_it_was_written_with() -> None:
    cipher = FieldCipher([NEW, OLD])
    old = format1(OLD, "alice@example.org", "acc_1")
    assert cipher.decrypt(old, encrypted.ACCOUNT_EMAIL.ref("acc_1")) == "alice@example.org"
    with pytest.raises(FieldCipherError):
        cipher.decrypt(old, encrypted.ACCOUNT_EMAIL.ref("acc_2"))
    # The logs bound theirs to a string naming the log and the account.
    ip = format1(OLD, "203.0.113.9", "security_log.ip:acc_1")
    assert cipher.decrypt(ip, encrypted.SECURITY_IP.ref("acc_1")) == "203.0.113.9"
    anon = format1(NEW, "203.0.113.9", "security_log.ip:-")
    assert cipher.decrypt(anon, encrypted.SECURITY_IP.ref(None)) == "203.0.113.9"
    reason = format1(OLD, "case 17", "audit_log.reason:acc_1")
    assert cipher.decrypt(reason, encrypted.AUDIT_REASON.ref("acc_1")) == "case 17"
    # Once every value is rewritten, format 1 can be refused outright.
    strict = FieldCipher([NEW, OLD], read_legacy=False)
    with pytest.raises(FieldCipherError, match="read_legacy_ciphertexts"):
        strict.decrypt(old, encrypted.ACCOUNT_EMAIL.ref("acc_1"))


def test_reseal_moves_a_value_to_the_newest_key_and_format() -> None:
    ref = encrypted.LEGAL_SUMMARY.ref("lr_1")
    old_v2 = FieldCipher([OLD]).encrypt("court order 9", ref)
    old_v1 = format1(OLD, "court order 9", "lr_1")
    cipher = FieldCipher([NEW, OLD])
    assert not cipher.is_current(old_v2) and not cipher.is_current(old_v1)
    for blob in (old_v1, old_v2):
        fresh = cipher.reseal(blob, ref)
        assert cipher.is_current(fresh)
        assert fresh.startswith(b"\x02\x02k2")
        # The old key retired: the rewritten value still reads, the old one no longer.
        retired = FieldCipher([NEW])
        assert retired.decrypt(fresh, ref) == "court order 9"
        with pytest.raises(FieldCipherError, match="'k1' is not configured"):
            retired.decrypt(blob, ref)


def row(**values: Any) -> Any:
    return SimpleNamespace(_mapping=values)


def test_reseal_row_rewrites_what_is_stale_and_reports_what_cannot_be_read() -> None:
    cipher = FieldCipher([NEW, OLD])
    cols = encrypted.by_table()["accounts"]
    current = cipher.encrypt("Alice", encrypted.ACCOUNT_DISPLAY_NAME.ref("acc_1"))
    moved = FieldCipher([OLD]).encrypt("JBSWY3DPEHPK3PXP", encrypted.ACCOUNT_TOTP.ref("acc_9"))
    changes, failures = reseal_row(cipher, cols, row(
        pk="acc_1", email_ct=format1(OLD, "alice@example.org", "acc_1"), rec_email_ct="acc_1",
        display_name_ct=current, rec_display_name_ct="acc_1",
        company_ct=None, rec_company_ct="acc_1",
        totp_secret_ct=moved, rec_totp_secret_ct="acc_1"))
    assert set(changes) == {"email_ct"}
    assert cipher.decrypt(changes["email_ct"], encrypted.ACCOUNT_EMAIL.ref("acc_1")) \
        == "alice@example.org"
    assert [(f.column, f.row) for f in failures] == [("accounts.totp_secret_ct", "acc_1")]
    assert "JBSWY3DPEHPK3PXP" not in failures[0].reason
    # An erased account keeps b"" as its email: nothing to do, nothing failed.
    assert reseal_row(cipher, cols, row(
        pk="acc_2", email_ct=b"", rec_email_ct="acc_2", display_name_ct=None,
        rec_display_name_ct="acc_2", company_ct=None, rec_company_ct="acc_2",
        totp_secret_ct=None, rec_totp_secret_ct="acc_2")) == ({}, [])


def test_every_encrypted_column_is_listed_for_rotation() -> None:
    in_tables = {f"{t.name}.{c.name}" for t in metadata.tables.values() for c in t.columns
                 if c.name.endswith("_ct")}
    assert {c.name for c in encrypted.ALL} == in_tables
    for table, cols in encrypted.by_table().items():
        assert len(cols[0].table.primary_key.columns) == 1, table


def test_a_batch_holds_at_least_one_row() -> None:
    with pytest.raises(ValueError):
        RotationPolicy(0)


def test_a_link_sealed_before_format_2_still_opens() -> None:
    import base64
    import hashlib
    import hmac
    from datetime import UTC, datetime, timedelta

    import jwt

    from gateway.adapters.tokens import PurposeTokens
    from gateway.services.errors import Unauthorized

    now = datetime(2026, 6, 1, tzinfo=UTC)
    session_key = os.urandom(32)
    tokens = PurposeTokens(session_key, "https://pay.example.org", lambda: now,
                           "email-change", FieldCipher([NEW, OLD]))
    fresh = tokens.issue("acc_1", "fp", timedelta(hours=1), sealed="new@example.org")
    assert tokens.open(fresh) == ("acc_1", "fp", "new@example.org")
    # As an older version mailed it: sealed for "<audience>:<account id>".
    blob = format1(OLD, "new@example.org", "packetra-email-change:acc_1")
    old = jwt.encode({
        "sub": "acc_1", "fp": "fp", "aud": "packetra-email-change",
        "iss": "https://pay.example.org", "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
        "sv": base64.urlsafe_b64encode(blob).decode().rstrip("=")},
        hmac.new(session_key, b"email-change", hashlib.sha256).digest(), algorithm="HS256")
    assert tokens.open(old) == ("acc_1", "fp", "new@example.org")
    # Sealed for another purpose, it does not open here.
    undo = PurposeTokens(session_key, "https://pay.example.org", lambda: now,
                         "email-change-undo", FieldCipher([NEW]))
    moved = jwt.encode({**jwt.decode(fresh, options={"verify_signature": False}),
                        "aud": "packetra-email-change-undo"},
                       hmac.new(session_key, b"email-change-undo", hashlib.sha256).digest(),
                       algorithm="HS256")
    with pytest.raises(Unauthorized):
        undo.open(moved)
