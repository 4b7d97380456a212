"""The storage adapters on a real SQLite file and a real PostgreSQL database."""

import asyncio
import os
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select

from chains.base import BlockRef, Destination
from gateway.adapters.db.engine import current_revision, head_revision, make_engine
from gateway.adapters.db.tables import payments
from gateway.adapters.db.types import BaseUnits, UTCDateTime
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import FieldCipher
from gateway.domain.accounts import Account
from gateway.domain.invoices import Invoice, InvoiceTerms, LockedRate
from gateway.domain.money import Fiat
from gateway.services.ports import Profile

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_migrations_reach_head(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert await current_revision(engine) == head_revision(database_url)
    finally:
        await engine.dispose()


async def test_base_units_and_times_round_trip_losslessly(database_url: str) -> None:
    meta = MetaData()
    probe = Table("probe", meta, Column("id", Integer, primary_key=True),
                  Column("amount", BaseUnits), Column("at", UTCDateTime))
    engine = make_engine(database_url)
    values = [0, 1, 2**64, 10**30 + 7, 2**256 - 1]
    plus_two = timezone(timedelta(hours=2))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(meta.create_all)
            for i, v in enumerate(values):
                await conn.execute(insert(probe).values(
                    id=i, amount=v, at=datetime(2026, 5, 1, 12, 0, tzinfo=plus_two)))
        async with engine.connect() as conn:
            rows = (await conn.execute(select(probe).order_by(probe.c.amount))).all()
        assert [r.amount for r in rows] == values  # ordered numerically on both stores
        assert all(isinstance(r.amount, int) for r in rows)
        assert all(r.at == datetime(2026, 5, 1, 10, 0, tzinfo=UTC) for r in rows)
        assert all(r.at.tzinfo is not None for r in rows)
        with pytest.raises(Exception, match="naive"):
            async with engine.begin() as conn:
                await conn.execute(insert(probe).values(id=99, amount=1,
                                                        at=datetime(2026, 1, 1)))
    finally:
        await engine.dispose()


def uow_factory(url: str) -> tuple[object, FieldCipher]:
    return make_engine(url), FieldCipher([("t", os.urandom(32))])


async def _account(engine: object, cipher: FieldCipher, account_id: str) -> None:
    async with SqlUnitOfWork(engine, cipher) as uow:  # type: ignore[arg-type]
        await uow.accounts.add(Account(account_id, T0), Profile(f"{account_id}@example.org"),
                               f"idx-{account_id}", "hash", "v1")
        await uow.commit()


def _invoice(invoice_id: str) -> Invoice:
    return Invoice(invoice_id, "acc_a", "LTC", Fiat(100, "EUR"), LockedRate("1", "fixed", T0),
                   InvoiceTerms(1000, 8, 2, T0 + timedelta(minutes=15), T0 + timedelta(days=1)),
                   T0)


async def test_concurrent_index_allocation_never_shares_an_address(database_url: str) -> None:
    engine, cipher = uow_factory(database_url)
    await _account(engine, cipher, "acc_a")

    async def create(n: int) -> int:
        async with SqlUnitOfWork(engine, cipher) as uow:  # type: ignore[arg-type]
            [index] = await uow.invoices.allocate("LTC")
            await asyncio.sleep(0)  # let the others interleave inside their transactions
            key = index.to_bytes(4, "big")
            await uow.invoices.add(_invoice(f"inv_{n}"), "LTC",
                                   Destination(index, f"a{index}", key), "x:")
            await uow.commit()
        return index

    try:
        indexes = await asyncio.gather(*(create(n) for n in range(40)))
        assert sorted(indexes) == list(range(40))
    finally:
        await engine.dispose()  # type: ignore[attr-defined]


async def test_payment_recording_is_idempotent(database_url: str) -> None:
    engine, cipher = uow_factory(database_url)
    await _account(engine, cipher, "acc_a")
    async with SqlUnitOfWork(engine, cipher) as uow:  # type: ignore[arg-type]
        await uow.invoices.add(_invoice("inv_p"), "LTC", Destination(0, "a", b"k"), "x:")
        await uow.commit()
    try:
        results = []
        for block in (None, BlockRef(5, "h5"), BlockRef(5, "h5"), None):
            async with SqlUnitOfWork(engine, cipher) as uow:  # type: ignore[arg-type]
                results.append(await uow.payments.record("LTC", "tx", 0, "inv_p", 2**200, block,
                                                         T0))
                await uow.commit()
        assert results == [True, False, False, False]
        async with SqlUnitOfWork(engine, cipher) as uow:  # type: ignore[arg-type]
            [p] = (await uow.payments.for_invoices(["inv_p"]))["inv_p"]
            assert (p.amount, p.block_height, p.status) == (2**200, 5, "confirmed")
            assert await uow.payments.disconnect(["LTC"], "h5") == ["inv_p"]
            assert await uow.payments.revert(["LTC"], ["tx"]) == ["inv_p"]
            [p] = (await uow.payments.for_invoices(["inv_p"]))["inv_p"]
            assert p.status == "reverted" and p.block_hash is None
            await uow.commit()
        async with engine.connect() as conn:  # type: ignore[attr-defined]
            count = (await conn.execute(select(func.count()).select_from(payments))).scalar()
        assert count == 1
    finally:
        await engine.dispose()  # type: ignore[attr-defined]


async def test_payment_keeps_the_time_of_the_block_it_was_first_seen_in(
    database_url: str,
) -> None:
    engine, cipher = uow_factory(database_url)
    await _account(engine, cipher, "acc_a")
    async with SqlUnitOfWork(engine, cipher) as uow:  # type: ignore[arg-type]
        await uow.invoices.add(_invoice("inv_b"), "LTC", Destination(0, "a", b"k"), "x:")
        await uow.commit()
    first, later = T0 + timedelta(minutes=14), T0 + timedelta(minutes=30)
    try:
        for txid, block, when in (("mined", BlockRef(5, "h5"), first),
                                  ("mined", BlockRef(6, "h6"), later),  # reorged elsewhere
                                  ("pooled", None, None),
                                  ("pooled", BlockRef(6, "h6"), later)):
            async with SqlUnitOfWork(engine, cipher) as uow:  # type: ignore[arg-type]
                await uow.payments.record("LTC", txid, 0, "inv_b", 1, block,
                                          T0 + timedelta(minutes=40), when)
                await uow.commit()
        async with SqlUnitOfWork(engine, cipher) as uow:  # type: ignore[arg-type]
            found = {p.txid: p for p in (await uow.payments.for_invoices(["inv_b"]))["inv_b"]}
        assert found["mined"].block_time == first and found["mined"].block_height == 6
        assert found["pooled"].block_time is None and found["pooled"].block_height == 6
    finally:
        await engine.dispose()  # type: ignore[attr-defined]


async def test_duplicate_email_index_is_a_conflict(database_url: str) -> None:
    from gateway.services.errors import Conflict

    engine, cipher = uow_factory(database_url)
    try:
        await _account(engine, cipher, "acc_a")
        async with SqlUnitOfWork(engine, cipher) as uow:  # type: ignore[arg-type]
            with pytest.raises(Conflict):
                await uow.accounts.add(Account("acc_b", T0), Profile("b@example.org"),
                                       "idx-acc_a", "hash", "v1")
    finally:
        await engine.dispose()  # type: ignore[attr-defined]


async def test_an_unreadable_endpoint_secret_does_not_block_other_deliveries(
    database_url: str,
) -> None:
    from gateway.adapters.db.webhooks import SqlDeliveryStore
    from gateway.domain.events import AccountCreated
    from gateway.services.ports import EndpointRecord

    engine = make_engine(database_url)
    old_key, new_key = ("old", os.urandom(32)), ("new", os.urandom(32))
    try:
        async with SqlUnitOfWork(engine, FieldCipher([old_key])) as uow:
            await uow.endpoints.add(EndpointRecord("whe_old", "http://127.0.0.1:9/a", (), "",
                                                   True, T0), "whsec_b2xk")
            await uow.commit()
        async with SqlUnitOfWork(engine, FieldCipher([new_key])) as uow:
            await uow.endpoints.add(EndpointRecord("whe_new", "http://127.0.0.1:9/b", (), "",
                                                   True, T0), "whsec_bmV3")
            await uow.outbox.publish([AccountCreated("acc_x")], T0)
            await uow.commit()
        # The old data key was dropped from configuration.
        store = SqlDeliveryStore(engine, FieldCipher([new_key]))
        claimed = await store.claim(T0 + timedelta(seconds=1), 10, 60)
        assert [d.endpoint_id for d in claimed] == ["whe_new"]
        assert claimed[0].secrets == ("whsec_bmV3",)
        from gateway.adapters.db.tables import deliveries

        async with engine.connect() as conn:
            rows = dict((await conn.execute(
                select(deliveries.c.endpoint_id, deliveries.c.status))).all())
        assert rows == {"whe_old": "failed", "whe_new": "pending"}
    finally:
        await engine.dispose()
