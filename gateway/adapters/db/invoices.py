from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from chains.base import BlockRef, Destination
from gateway.adapters.db.tables import derivation_counters, invoices, payments
from gateway.domain.invoices import (
    Invoice,
    InvoiceException,
    InvoiceTerms,
    LockedRate,
    Status,
)
from gateway.domain.money import Fiat
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
    return PaymentRecord(
        row.txid, row.output_index, row.amount, row.block_hash, row.block_height, row.status,
        row.seen_at, row.block_time,
    )


class SqlInvoices:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def allocate_index(self, coin: str) -> int:
        # UPDATE takes the row lock (PostgreSQL) or the write lock (SQLite) for the rest of
        # the transaction, so concurrent creators queue here and never share an index.
        for _ in range(3):
            result = await self._conn.execute(
                update(derivation_counters)
                .where(derivation_counters.c.coin == coin)
                .values(next_index=derivation_counters.c.next_index + 1)
                .returning(derivation_counters.c.next_index)
            )
            value = result.scalar_one_or_none()
            if value is not None:
                return int(value) - 1
            try:
                async with self._conn.begin_nested():
                    await self._conn.execute(
                        insert(derivation_counters).values(coin=coin, next_index=1)
                    )
                return 0
            except IntegrityError:
                continue  # another instance created the counter first
        raise RuntimeError("could not allocate a derivation index")

    async def add(self, invoice: Invoice, destination: Destination, payment_uri: str) -> None:
        t = invoice.terms
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

    async def open_with_payments(self, coin: str, now: datetime) -> list[Invoice]:
        has_payment = exists().where(
            payments.c.invoice_id == invoices.c.id, payments.c.status != "reverted"
        )
        rows = await self._conn.execute(
            select(invoices).where(
                invoices.c.coin == coin,
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
        await self._conn.execute(
            update(invoices)
            .where(invoices.c.id == invoice.id)
            .values(
                status=invoice.status.value,
                exception=invoice.exception.value if invoice.exception else None,
                settled_at=invoice.settled_at,
            )
        )


    async def address_usage(self, coin: str) -> tuple[int, set[int]]:
        derived = (await self._conn.execute(
            select(derivation_counters.c.next_index).where(derivation_counters.c.coin == coin)
        )).scalar_one_or_none() or 0
        used = (await self._conn.execute(
            select(invoices.c.derivation_index).distinct()
            .join(payments, payments.c.invoice_id == invoices.c.id)
            .where(invoices.c.coin == coin, payments.c.status == "confirmed")
        )).scalars()
        return int(derived), set(used)


class SqlPayments:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def record(
        self, coin: str, txid: str, index: int, invoice_id: str, amount: int,
        block: BlockRef | None, seen_at: datetime, block_time: datetime | None = None,
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
                    status="confirmed" if block else "pending",
                    seen_at=seen_at,
                    block_time=block_time if block else None,
                )
            )
            return True
        if block is not None:
            await self._conn.execute(
                update(payments).where(*key).values(
                    block_hash=block.hash, block_height=block.height, status="confirmed"
                )
            )
        elif row.status == "reverted":
            await self._conn.execute(update(payments).where(*key).values(status="pending"))
        return False

    async def disconnect(self, coin: str, block_hash: str) -> list[str]:
        where = (payments.c.coin == coin, payments.c.block_hash == block_hash)
        ids = (await self._conn.execute(select(payments.c.invoice_id).where(*where))).scalars()
        found = sorted(set(ids))
        await self._conn.execute(
            update(payments).where(*where).values(
                block_hash=None, block_height=None, status="pending"
            )
        )
        return found

    async def revert(self, coin: str, txids: Any) -> list[str]:
        txids = list(txids)
        where = (
            payments.c.coin == coin, payments.c.txid.in_(txids), payments.c.status == "pending"
        )
        ids = (await self._conn.execute(select(payments.c.invoice_id).where(*where))).scalars()
        found = sorted(set(ids))
        await self._conn.execute(update(payments).where(*where).values(status="reverted"))
        return found

    async def for_invoice(self, invoice_id: str) -> list[PaymentRecord]:
        rows = await self._conn.execute(
            select(payments).where(payments.c.invoice_id == invoice_id).order_by(payments.c.id)
        )
        return [_payment(r) for r in rows]

    async def unconfirmed_txids(self, coin: str) -> list[str]:
        rows = await self._conn.execute(
            select(payments.c.txid)
            .where(payments.c.coin == coin, payments.c.status == "pending")
            .distinct()
        )
        return list(rows.scalars())
