from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chains.base import BlockRef, Destination, Lock
from gateway.adapters.db.tables import derivation_counters, invoices, payments
from gateway.domain.invoices import (
    Invoice,
    InvoiceException,
    InvoiceTerms,
    LockedRate,
    Status,
)
from gateway.domain.money import Fiat
from gateway.domain.payments import PaymentStatus
from gateway.services.ports import InvoiceRecord, PaymentRecord


def _invoice(row: Any) -> Invoice:
    r = row._mapping
    return Invoice(
        id=r["id"],
        account_id=r["account_id"],
        coin=r["coin"],
        price=Fiat(r["price_minor"], r["price_currency"]),
        rate=LockedRate(r["rate_value"], r["rate_source"], r["rate_locked_at"]),
        terms=InvoiceTerms(
            amount_due=r["amount_due"],
            decimals=r["decimals"],
            confirmations_required=r["confirmations_required"],
            expires_at=r["expires_at"],
            monitoring_until=r["monitoring_until"],
            tolerance_basis_points=r["tolerance_basis_points"],
            accept_late_payments=r["accept_late_payments"],
        ),
        created_at=r["created_at"],
        metadata=dict(r["metadata"]),
        status=Status(r["status"]),
        exception=InvoiceException(r["exception"]) if r["exception"] else None,
        settled_at=r["settled_at"],
    )


def _payment(row: Any) -> PaymentRecord:
    lock = None
    if row.lock_height is not None or row.lock_time is not None:
        lock = Lock(row.lock_height, row.lock_time)
    return PaymentRecord(
        row.txid, row.output_index, row.amount, row.block_hash, row.block_height,
        PaymentStatus(row.status), row.seen_at, row.block_time, row.coin, lock,
    )


class SqlInvoices:
    def __init__(self, conn: AsyncConnection,
                 collect: Callable[[Invoice], None] = lambda _i: None,
                 allocator: AsyncEngine | None = None) -> None:
        self._conn = conn
        self._allocator = allocator  # PostgreSQL: a small pool of its own for `allocate`
        self._collect = collect  # the unit of work publishes the events at commit

    async def allocate(self, space: str, count: int = 1) -> range:
        """`count` fresh indexes of the address space, never handed out twice, whichever
        coin of the space they are for. PostgreSQL with an `allocator`: one upsert in its
        own transaction on the allocator's own pool (never waiting for a connection the
        creators hold), so the counter's row lock is held for that statement only (not to
        this transaction's commit, which made creators take turns); an index whose invoice
        then fails to commit stays unused. Otherwise in this transaction: the UPDATE holds
        the row lock (PostgreSQL) or the one write lock (SQLite) to commit, and a rollback
        gives the index back."""
        if count < 1:
            raise ValueError("count must be positive")
        if self._allocator is not None and self._conn.dialect.name == "postgresql":
            return await self._allocate_apart(self._allocator, space, count)
        for _ in range(3):
            result = await self._conn.execute(
                update(derivation_counters)
                .where(derivation_counters.c.space == space)
                .values(next_index=derivation_counters.c.next_index + count)
                .returning(derivation_counters.c.next_index)
            )
            value = result.scalar_one_or_none()
            if value is not None:
                return range(int(value) - count, int(value))
            try:
                async with self._conn.begin_nested():
                    await self._conn.execute(
                        insert(derivation_counters).values(space=space, next_index=count)
                    )
                return range(0, count)
            except IntegrityError:
                continue  # another instance created the counter first
        raise RuntimeError("could not allocate a derivation index")

    @staticmethod
    async def _allocate_apart(engine: AsyncEngine, space: str, count: int) -> range:
        c = derivation_counters.c
        upsert = pg_insert(derivation_counters).values(
            space=space, next_index=count,
        ).on_conflict_do_update(
            index_elements=[c.space], set_={"next_index": c.next_index + count},
        ).returning(c.next_index)
        async with engine.connect() as apart, apart.begin():
            value = int((await apart.execute(upsert)).scalar_one())
        return range(value - count, value)

    async def add(self, invoice: Invoice, space: str, destination: Destination,
                  payment_uri: str) -> None:
        t = invoice.terms
        self._collect(invoice)
        await self._conn.execute(
            insert(invoices).values(
                id=invoice.id,
                account_id=invoice.account_id,
                coin=invoice.coin,
                price_minor=invoice.price.minor,
                price_currency=invoice.price.currency,
                rate_value=invoice.rate.value,
                rate_source=invoice.rate.source,
                rate_locked_at=invoice.rate.locked_at,
                amount_due=t.amount_due,
                decimals=t.decimals,
                confirmations_required=t.confirmations_required,
                tolerance_basis_points=t.tolerance_basis_points,
                accept_late_payments=t.accept_late_payments,
                address_space=space,
                derivation_index=destination.index,
                address=destination.address,
                match_key=destination.match_key,
                payment_uri=payment_uri,
                status=invoice.status.value,
                exception=invoice.exception.value if invoice.exception else None,
                metadata=invoice.metadata,
                created_at=invoice.created_at,
                expires_at=t.expires_at,
                monitoring_until=t.monitoring_until,
                settled_at=invoice.settled_at,
            )
        )

    @staticmethod
    def _by_id(invoice_id: str) -> Any:
        return select(invoices).where(invoices.c.id == invoice_id)

    async def get(self, invoice_id: str, for_update: bool = False) -> Invoice | None:
        query = self._by_id(invoice_id)
        if for_update:
            # Held to commit: a concurrent transition (watcher, sweeper, another instance)
            # waits, then sees the new state, so no transition or event happens twice.
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return _invoice(row) if row else None

    async def read(self, invoice_id: str) -> InvoiceRecord | None:
        row = (await self._conn.execute(self._by_id(invoice_id))).first()
        if row is None:
            return None
        return InvoiceRecord(
            _invoice(row), row.address, row.payment_uri,
            tuple(await self._payments(invoice_id)),
        )

    async def _payments(self, invoice_id: str) -> list[PaymentRecord]:
        rows = await self._conn.execute(
            select(payments)
            .where(payments.c.invoice_id == invoice_id)
            .order_by(payments.c.seen_at, payments.c.id)
        )
        return [_payment(r) for r in rows]

    async def page(
        self, account_id: str | None, status: str | None, after: str | None, limit: int
    ) -> list[InvoiceRecord]:
        query = select(invoices).order_by(invoices.c.created_at.desc(), invoices.c.id.desc())
        if account_id is not None:
            query = query.where(invoices.c.account_id == account_id)
        if status is not None:
            query = query.where(invoices.c.status == status)
        if after is not None:
            anchor = (
                await self._conn.execute(
                    select(invoices.c.created_at).where(invoices.c.id == after)
                )
            ).scalar_one_or_none()
            if anchor is not None:
                query = query.where(
                    or_(
                        invoices.c.created_at < anchor,
                        and_(invoices.c.created_at == anchor, invoices.c.id < after),
                    )
                )
        rows = (await self._conn.execute(query.limit(limit))).all()
        return [
            InvoiceRecord(_invoice(r), r.address, r.payment_uri, tuple(await self._payments(r.id)))
            for r in rows
        ]

    async def by_match_key(self, coin: str, match_key: bytes) -> Invoice | None:
        row = (
            await self._conn.execute(
                select(invoices).where(invoices.c.coin == coin, invoices.c.match_key == match_key)
                .with_for_update()
            )
        ).first()
        return _invoice(row) if row else None

    async def open_for_account(self, account_id: str, now: datetime) -> list[Invoice]:
        rows = await self._conn.execute(
            select(invoices)
            .where(invoices.c.account_id == account_id,
                   invoices.c.status == Status.NEW.value, invoices.c.expires_at > now)
            .order_by(invoices.c.created_at.desc(), invoices.c.id.desc())
            .limit(1000)
        )
        return [_invoice(r) for r in rows]

    async def open_with_payments(self, coins: Sequence[str], now: datetime) -> list[Invoice]:
        has_payment = exists().where(
            payments.c.invoice_id == invoices.c.id,
            payments.c.status != PaymentStatus.REVERTED.value,
        )
        rows = await self._conn.execute(
            select(invoices).where(
                invoices.c.coin.in_(list(coins)),
                or_(
                    invoices.c.status.in_([Status.NEW.value, Status.PROCESSING.value]),
                    and_(
                        invoices.c.status == Status.EXPIRED.value,
                        invoices.c.monitoring_until > now,
                    ),
                ),
                has_payment,
            )
            .order_by(invoices.c.id)
            .with_for_update()
        )
        return [_invoice(r) for r in rows]

    async def due_by_time(self, now: datetime) -> list[Invoice]:
        rows = await self._conn.execute(
            select(invoices)
            .where(
                or_(
                    and_(invoices.c.status == Status.NEW.value, invoices.c.expires_at <= now),
                    and_(
                        invoices.c.status == Status.PROCESSING.value,
                        invoices.c.monitoring_until <= now,
                    ),
                )
            )
            .order_by(invoices.c.id)
            .limit(500)
            .with_for_update(skip_locked=True)
        )
        return [_invoice(r) for r in rows]

    async def save(self, invoice: Invoice) -> None:
        self._collect(invoice)
        await self._conn.execute(
            update(invoices)
            .where(invoices.c.id == invoice.id)
            .values(
                status=invoice.status.value,
                exception=invoice.exception.value if invoice.exception else None,
                settled_at=invoice.settled_at,
            )
        )

    async def address_usage(self, space: str) -> tuple[int, set[int]]:
        derived = (await self._conn.execute(
            select(derivation_counters.c.next_index).where(derivation_counters.c.space == space)
        )).scalar_one_or_none() or 0
        used = (await self._conn.execute(
            select(invoices.c.derivation_index).distinct()
            .join(payments, payments.c.invoice_id == invoices.c.id)
            .where(invoices.c.address_space == space,
                   payments.c.status == PaymentStatus.CONFIRMED.value)
        )).scalars()
        return int(derived), set(used)


class SqlPayments:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def record(
        self, coin: str, txid: str, index: int, invoice_id: str, amount: int,
        block: BlockRef | None, seen_at: datetime, block_time: datetime | None = None,
        lock: Lock | None = None,
    ) -> bool:
        key = (payments.c.coin == coin, payments.c.txid == txid, payments.c.output_index == index)
        row = (await self._conn.execute(select(payments.c.status).where(*key))).first()
        if row is None:
            await self._conn.execute(
                insert(payments).values(
                    coin=coin, txid=txid, output_index=index, invoice_id=invoice_id,
                    amount=amount,
                    block_hash=block.hash if block else None,
                    block_height=block.height if block else None,
                    status=(PaymentStatus.CONFIRMED if block else PaymentStatus.PENDING).value,
                    seen_at=seen_at,
                    block_time=block_time if block else None,
                    lock_height=lock.height if lock else None,
                    lock_time=lock.time if lock else None,
                )
            )
            return True
        if block is not None:
            await self._conn.execute(
                update(payments).where(*key).values(
                    block_hash=block.hash, block_height=block.height,
                    status=PaymentStatus.CONFIRMED.value,
                )
            )
        elif row.status == PaymentStatus.REVERTED:
            await self._conn.execute(
                update(payments).where(*key).values(status=PaymentStatus.PENDING.value))
        return False

    async def _unconfirm(self, where: Any) -> list[str]:
        ids = (await self._conn.execute(select(payments.c.invoice_id).where(*where))).scalars()
        found = sorted(set(ids))
        await self._conn.execute(
            update(payments).where(*where).values(
                block_hash=None, block_height=None, status=PaymentStatus.PENDING.value
            )
        )
        return found

    async def disconnect(self, coins: Sequence[str], block_hash: str) -> list[str]:
        return await self._unconfirm((payments.c.coin.in_(list(coins)),
                                      payments.c.block_hash == block_hash))

    async def unconfirm(self, coins: Sequence[str], txids: Sequence[str]) -> list[str]:
        return await self._unconfirm((payments.c.coin.in_(list(coins)),
                                      payments.c.txid.in_(list(txids)),
                                      payments.c.status == PaymentStatus.CONFIRMED.value))

    async def revert(self, coins: Sequence[str], txids: Sequence[str]) -> list[str]:
        where = (
            payments.c.coin.in_(list(coins)), payments.c.txid.in_(list(txids)),
            payments.c.status == PaymentStatus.PENDING.value,
        )
        ids = (await self._conn.execute(select(payments.c.invoice_id).where(*where))).scalars()
        found = sorted(set(ids))
        await self._conn.execute(
            update(payments).where(*where).values(status=PaymentStatus.REVERTED.value))
        return found

    async def for_invoice(self, invoice_id: str) -> list[PaymentRecord]:
        rows = await self._conn.execute(
            select(payments).where(payments.c.invoice_id == invoice_id).order_by(payments.c.id)
        )
        return [_payment(r) for r in rows]

    async def unconfirmed_txids(self, coins: Sequence[str]) -> list[str]:
        rows = await self._conn.execute(
            select(payments.c.txid)
            .where(payments.c.coin.in_(list(coins)),
                   payments.c.status == PaymentStatus.PENDING.value)
            .distinct()
        )
        return list(rows.scalars())
