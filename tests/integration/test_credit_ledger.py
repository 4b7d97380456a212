"""The credit ledger's SQL adapter on SQLite and PostgreSQL (docs/credit.md): an entry is
written once per account and cause (also by two transactions at once), the balance is
the sum, the entries page back newest first, `between` lists a period for finance."""

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.tables import accounts
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import FieldCipher
from gateway.domain.credit import Conversion, CreditEntry, CreditKind, payment_cause

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CIPHER = FieldCipher([("t", os.urandom(32))])


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    async with engine.begin() as conn:
        for aid in ("acc_a", "acc_b"):
            await conn.execute(insert(accounts).values(
                id=aid, email_index=aid, email_ct=b"x", password_hash="x",
                created_at=T0, currency="EUR"))
    try:
        yield engine
    finally:
        await engine.dispose()


def late(n: int, amount: int = 250, at: datetime = T0) -> CreditEntry:
    wei = 10**19 + n  # above 2**63: base units of an EVM coin do not fit a BIGINT
    return CreditEntry("acc_a", CreditKind.LATE, amount, "EUR",
                       payment_cause("ETH", f"0x{n:064x}", n), at, invoice_id=f"inv_{n}",
                       conversion=Conversion("ETH", f"0x{n:064x}", n, wei, 18,
                                             "2500.12", "coingecko,kraken"))


async def test_add_is_idempotent_per_cause_and_keeps_every_field(
        engine: AsyncEngine) -> None:
    async with SqlUnitOfWork(engine, CIPHER) as uow:
        assert await uow.credit.add(late(1))
        assert not await uow.credit.add(late(1, amount=999))  # same cause: not written
        # The same cause on another account is another entry.
        other = CreditEntry("acc_b", CreditKind.LATE, 5, "EUR", late(1).cause, T0)
        assert await uow.credit.add(other)
        await uow.commit()
    async with SqlUnitOfWork(engine, CIPHER, read_only=True) as uow:
        assert await uow.credit.balance("acc_a") == 250
        assert await uow.credit.balance("acc_b") == 5
        assert await uow.credit.balance("acc_nobody") == 0
        [stored] = await uow.credit.entries("acc_a")
        assert stored.id is not None
        assert stored == late(1).__class__(**{**late(1).__dict__, "id": stored.id})
        assert stored.conversion is not None and stored.conversion.crypto_amount == 10**19 + 1
        assert await uow.credit.find("acc_a", late(1).cause) == stored
        assert await uow.credit.find("acc_a", "spend:nothing") is None


async def test_balance_sums_signed_entries_and_entries_page_back(
        engine: AsyncEngine) -> None:
    async with SqlUnitOfWork(engine, CIPHER) as uow:
        for n in range(1, 6):
            assert await uow.credit.add(late(n, amount=100, at=T0 + timedelta(hours=n)))
        assert await uow.credit.add(CreditEntry(
            "acc_a", CreditKind.SPENT, -350, "EUR", "spend:inv_x", T0 + timedelta(hours=6),
            invoice_id="inv_x"))
        await uow.commit()
    async with SqlUnitOfWork(engine, CIPHER, read_only=True) as uow:
        assert await uow.credit.balance("acc_a") == 150
        first = await uow.credit.entries("acc_a", limit=4)
        assert [e.kind for e in first] == [CreditKind.SPENT] + [CreditKind.LATE] * 3
        assert [e.amount for e in first] == [-350, 100, 100, 100]
        rest = await uow.credit.entries("acc_a", limit=4, before_id=first[-1].id)
        assert len(rest) == 2 and all(e.id < first[-1].id for e in rest)  # type: ignore
        assert [e.cause for e in first + rest] == [
            "spend:inv_x", *(late(n).cause for n in (5, 4, 3, 2, 1))]
        period = await uow.credit.between(T0 + timedelta(hours=2), T0 + timedelta(hours=4))
        assert [e.cause for e in period] == [late(2).cause, late(3).cause]


async def test_two_transactions_writing_the_same_cause_write_one_entry(
        engine: AsyncEngine) -> None:
    """Two instances crediting the same output at once: the unique key decides."""
    started = asyncio.Event()
    results: list[bool] = []

    async def credit_once() -> None:
        async with SqlUnitOfWork(engine, CIPHER) as uow:
            results.append(await uow.credit.add(late(7)))
            started.set()
            await asyncio.sleep(0.05)
            await uow.commit()

    await asyncio.gather(credit_once(), credit_once())
    assert sorted(results) == [False, True]
    async with SqlUnitOfWork(engine, CIPHER, read_only=True) as uow:
        assert await uow.credit.balance("acc_a") == 250
        assert len(await uow.credit.entries("acc_a")) == 1
