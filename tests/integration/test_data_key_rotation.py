"""Issue 27, item 18: `gateway keys rotate-data` on a real database (SQLite and
PostgreSQL). Values written under an old key, some in the format before fields were
bound to their column, are re-encrypted under the newest key in batches; the old key is
then removed and everything still reads. One value moved to another row cannot be read:
it is reported, the others are rewritten all the same, and the exit code is 1."""

import asyncio
import base64
import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update

from gateway import cli
from gateway.adapters.db import encrypted
from gateway.adapters.db import tables as t
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import BlindIndex, FieldCipher, FieldCipherError
from gateway.adapters.mail_queue import SqlMailQueue
from gateway.domain.accounts import Account
from gateway.domain.cash import CashRules, Envelope, issue
from gateway.domain.refund_chain import RefundWatch
from gateway.domain.refunds import Quote, Refund
from gateway.services.ports import (
    AuditEntry,
    EndpointRecord,
    LegalRequest,
    Profile,
    StaffLogEntry,
    StaffMember,
)
from tests.support.keys import security_env

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OLD = ("k1", os.urandom(32))
NEW = ("k2", os.urandom(32))

Values = dict[tuple[str, str], str]  # (table.column, primary key) -> plaintext


def format1(plaintext: str, associated: str) -> bytes:
    """As versions before format 2 wrote a value: the record id as associated data."""
    kid, raw = OLD
    nonce = os.urandom(12)
    sealed = AESGCM(raw).encrypt(nonce, plaintext.encode(), associated.encode())
    return b"\x01" + bytes([len(kid)]) + kid.encode() + nonce + sealed


async def write_everything(url: str) -> None:
    """At least one value in every encrypted column, under the old key only."""
    engine = make_engine(url)
    cipher = FieldCipher([OLD])
    try:
        async with SqlUnitOfWork(engine, cipher, mail_index=BlindIndex(os.urandom(32))) as uow:
            for i in range(5):
                await uow.accounts.add(
                    Account(f"acc_{i}", NOW),
                    Profile(f"user{i}@example.org", f"User {i}", f"Company {i}"),
                    f"ix{i}", "hash", "v1")
            await uow.accounts.set_totp("acc_0", "JBSWY3DPEHPK3PXP", NOW, None)
            await uow.security_log.add("acc_0", "login_succeeded", "203.0.113.9", NOW)
            await uow.security_log.add(None, "login_failed", "2001:db8::5", NOW)
            await uow.audit.add(AuditEntry(NOW, "cli:op", "acc_0", "read_account",
                                           ("email",), "ticket 42 from John Doe"))
            await uow.legal.add(LegalRequest("lr_1", NOW, "court order 9", True, None,
                                             "cli:op", NOW, ("acc_0",)))
            await uow.endpoints.add(EndpointRecord("whe_1", "http://127.0.0.1:9/a", (), "",
                                                   True, NOW), "whsec_b25l")
            await uow.endpoints.rotate("whe_1", "whsec_dHdv", NOW + timedelta(days=1))
            await uow.staff.add(StaffMember("stf_1", "sam", "admin", NOW, None), "hash")
            await uow.staff.set_totp_secret("stf_1", "STAFFSECRET")
            await uow.staff.log(StaffLogEntry("sam", "login_succeeded", None, "198.51.100.4",
                                              NOW))
            # A refund holds four: the address, the payment request and PSBT naming it,
            # and (Monero) the tx key.
            refund = Refund.request(id="rfd_1", account_id="acc_0", amount=500,
                                    currency="EUR", coin="XMR", address="4refundaddress",
                                    now=NOW)
            refund.approve("stf_1", "ok", NOW, Quote(1, "80", "monero:4refundaddress",
                                                     psbt="cHNidP8="))
            refund.mark_sent("ab" * 32, NOW, tx_key="txkey")
            await uow.refunds.add(refund)
            await uow.refunds.save(refund)
            await uow.refund_watches.add(RefundWatch("rfd_1", "acc_0", "LTC", b"\x00\x14" * 11,
                                                     1, 3), "LTC", NOW)
            # A cash token's note on its envelope (docs/cash.md).
            token = issue("ctk_1", "acc_0", NOW, CashRules())
            await uow.cash_tokens.add(token, "hash-of-the-token")
            await uow.cash_tokens.mark_used(token.used(Envelope(500, "EUR", "stf_1", NOW,
                                                                "one 5 note")))
            await uow.commit()
        await SqlMailQueue(engine, cipher, BlindIndex(os.urandom(32))).put(
            "user2@example.org", "Reset your password", "https://pay.example.org/r?t=x", NOW)
        async with engine.begin() as conn:
            # Written by a version before format 2: bound to the record id alone.
            await conn.execute(update(t.accounts).where(t.accounts.c.id == "acc_1").values(
                email_ct=format1("user1@example.org", "acc_1"),
                display_name_ct=format1("User 1", "acc_1")))
            await conn.execute(update(t.security_log).where(
                t.security_log.c.account_id == "acc_0").values(
                    ip_ct=format1("203.0.113.9", "security_log.ip:acc_0")))
    finally:
        await engine.dispose()


async def read_everything(url: str, cipher: FieldCipher) -> tuple[Values, list[str]]:
    """Every stored value decrypted where it lies; and those that would not decrypt."""
    values: Values = {}
    unreadable: list[str] = []
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            for col in encrypted.ALL:
                (pk,) = col.table.primary_key.columns
                rows = await conn.execute(select(
                    pk, col.ct, col.table.c[col.record_column].label("rec")))
                for r in rows:
                    if not r[1]:
                        continue
                    try:
                        values[col.name, str(r[0])] = cipher.decrypt(r[1], col.ref(r.rec))
                    except FieldCipherError as exc:
                        unreadable.append(str(exc))
    finally:
        await engine.dispose()
    return values, unreadable


async def move_company(url: str, source: str, target: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            blob = (await conn.execute(select(t.accounts.c.company_ct).where(
                t.accounts.c.id == source))).scalar_one()
            await conn.execute(update(t.accounts).where(t.accounts.c.id == target)
                               .values(company_ct=blob))
    finally:
        await engine.dispose()


async def stored_blobs(url: str) -> list[bytes]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            found: list[bytes] = []
            for col in encrypted.ALL:
                found += [b for b in (await conn.execute(select(col.ct))).scalars() if b]
        return found
    finally:
        await engine.dispose()


def keys(*pairs: tuple[str, bytes]) -> str:
    return json.dumps([f"{kid}:{base64.b64encode(raw).decode()}" for kid, raw in pairs])


def test_rotate_data_then_retire_the_old_key(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    asyncio.run(write_everything(database_url))
    before, unreadable = asyncio.run(read_everything(database_url, FieldCipher([OLD])))
    assert unreadable == []
    assert {name for name, _ in before} == {c.name for c in encrypted.ALL}
    assert before["accounts.email_ct", "acc_1"] == "user1@example.org"  # format 1
    # A rotated webhook secret was sealed again for the column it moved to.
    assert before["webhook_endpoints.previous_secret_ct", "whe_1"] == "whsec_b25l"
    assert before["webhook_endpoints.secret_ct", "whe_1"] == "whsec_dHdv"

    # The deliberately corrupted row: acc_4's company is acc_3's ciphertext.
    asyncio.run(move_company(database_url, "acc_3", "acc_4"))
    del before["accounts.company_ct", "acc_4"]

    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    for name, value in security_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GATEWAY_DATABASE__URL", database_url)
    monkeypatch.setenv("GATEWAY_SECURITY__DATA_KEYS", keys(NEW, OLD))

    # The upgrade cannot rewrite them (no keys), and says what will.
    assert cli.main(["db", "upgrade"]) == 0
    assert ("2 rows hold personal fields bound to their record only"
            in capsys.readouterr().out)  # acc_1 and acc_0's security-log entry

    assert cli.main(["keys", "rotate-data", "--dry-run"]) == 0
    counted = capsys.readouterr().out.splitlines()
    assert "accounts: 5 rows to re-encrypt" in counted
    assert "mail_queue: 1 rows to re-encrypt" in counted

    # Two rows a batch: the five accounts take three transactions.
    assert cli.main(["keys", "rotate-data", "--batch-size", "2"]) == 1
    said = capsys.readouterr()
    lines = said.out.splitlines()
    assert "accounts: 15 values re-encrypted in 5 rows, 1 failed" in lines
    assert "security_log: 2 values re-encrypted in 2 rows, 0 failed" in lines
    assert "webhook_endpoints: 2 values re-encrypted in 1 rows, 0 failed" in lines
    assert "mail_queue: 3 values re-encrypted in 1 rows, 0 failed" in lines
    assert len(lines) == len(encrypted.by_table())  # one line a table, no "all done"
    assert "accounts.company_ct of acc_4" in said.err and "(row acc_4)" in said.err
    assert "Company" not in said.out + said.err and "example.org" not in said.err

    # The old key removed: everything rewritten still reads, under the new key only.
    after, unreadable = asyncio.run(read_everything(database_url, FieldCipher([NEW])))
    assert after == before
    assert len(unreadable) == 1 and "accounts.company_ct of acc_4" in unreadable[0]
    # The moved value is never read as acc_4's, under either key.
    with pytest.raises(FieldCipherError, match="moved from another column or record"):
        asyncio.run(profile(database_url, FieldCipher([NEW, OLD]), "acc_4"))
    assert asyncio.run(profile(database_url, FieldCipher([NEW], read_legacy=False),
                               "acc_1")) == Profile("user1@example.org", "User 1",
                                                    "Company 1")

    # Resumable: a second run has nothing left but the one it cannot read.
    assert cli.main(["keys", "rotate-data"]) == 1
    assert "accounts: 0 values re-encrypted in 0 rows, 1 failed" in capsys.readouterr().out

    # The operator clears the bad value (the customer enters it again): all done.
    async def clear() -> None:
        engine = make_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(update(t.accounts).where(t.accounts.c.id == "acc_4")
                                   .values(company_ct=None))
        finally:
            await engine.dispose()

    asyncio.run(clear())
    monkeypatch.setenv("GATEWAY_SECURITY__DATA_KEYS", keys(NEW))
    assert cli.main(["keys", "rotate-data"]) == 0
    assert "every encrypted value is under data key 'k2'" in capsys.readouterr().out
    assert all(b.startswith(b"\x02\x02k2") for b in asyncio.run(stored_blobs(database_url)))
    assert cli.main(["db", "upgrade"]) == 0
    assert "record only" not in capsys.readouterr().out


async def profile(url: str, cipher: FieldCipher, account_id: str) -> Profile:
    engine = make_engine(url)
    try:
        async with SqlUnitOfWork(engine, cipher) as uow:
            return await uow.accounts.profile(account_id)
    finally:
        await engine.dispose()


async def test_an_unreadable_webhook_secret_is_rotated_without_overlap(
    database_url: str,
) -> None:
    """Rotation is the remedy for a secret that no longer reads: the new one signs alone
    (the unreadable one is never carried over as the previous secret)."""
    engine = make_engine(database_url)
    try:
        async with SqlUnitOfWork(engine, FieldCipher([OLD])) as uow:
            await uow.endpoints.add(EndpointRecord("whe_1", "http://127.0.0.1:9/a", (), "",
                                                   True, NOW), "whsec_b25l")
            await uow.commit()
        async with SqlUnitOfWork(engine, FieldCipher([NEW])) as uow:  # old key gone
            assert await uow.endpoints.rotate("whe_1", "whsec_dHdv", NOW + timedelta(days=1))
            assert not await uow.endpoints.rotate("whe_none", "whsec_eA", NOW)
            await uow.commit()
        async with engine.connect() as conn:
            row = (await conn.execute(select(t.webhook_endpoints))).one()
        assert row.previous_secret_ct is None
        assert FieldCipher([NEW]).decrypt(row.secret_ct, encrypted.WEBHOOK_SECRET.ref(
            "whe_1")) == "whsec_dHdv"
    finally:
        await engine.dispose()
