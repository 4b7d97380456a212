"""Payments as finance reads them: joined with their invoice, in a stable order."""

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.tables import invoices, paid_periods, payments
from gateway.domain.payments import PaymentStatus
from gateway.services.ports import LedgerRow

_COLUMNS = (
    payments.c.id, payments.c.seen_at, payments.c.invoice_id, invoices.c.account_id,
    payments.c.coin, payments.c.txid, payments.c.output_index, payments.c.amount,
    invoices.c.decimals, invoices.c.rate_value, invoices.c.price_currency,
    payments.c.block_hash, payments.c.block_height, payments.c.status, invoices.c.address,
    invoices.c.match_key, paid_periods.c.plan, paid_periods.c.starts_at,
    paid_periods.c.ends_at,
)


def _row(r: Any) -> LedgerRow:
    return LedgerRow(
        id=r.id, seen_at=r.seen_at, invoice_id=r.invoice_id, account_id=r.account_id,
        coin=r.coin, txid=r.txid, output_index=r.output_index, amount=r.amount,
        decimals=r.decimals, rate=r.rate_value, fiat_currency=r.price_currency,
        block_hash=r.block_hash, block_height=r.block_height, status=PaymentStatus(r.status),
        address=r.address, match_key=bytes(r.match_key), plan=r.plan,
        period_start=r.starts_at, period_end=r.ends_at)


def _joined() -> Select[Any]:
    """Payments with their invoice and, for a settled plan invoice, the period it paid."""
    return (select(*_COLUMNS).join(invoices, invoices.c.id == payments.c.invoice_id)
            .outerjoin(paid_periods, paid_periods.c.invoice_id == payments.c.invoice_id))


def _period(start: datetime | None, end: datetime | None,
            coin: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if start is not None:
        where.append(payments.c.seen_at >= start)
    if end is not None:
        where.append(payments.c.seen_at < end)
    if coin is not None:
        where.append(payments.c.coin == coin)
    return where


class SqlLedger:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def page(self, start: datetime | None, end: datetime | None, coin: str | None,
                   after: int | None, limit: int) -> list[LedgerRow]:
        where = _period(start, end, coin)
        if after is not None:
            where.append(payments.c.id > after)
        rows = await self._conn.execute(
            _joined().where(and_(True, *where)).order_by(payments.c.id).limit(limit))
        return [_row(r) for r in rows]

    async def count(self, start: datetime | None, end: datetime | None,
                    coin: str | None) -> int:
        return int((await self._conn.execute(
            select(func.count()).select_from(payments)
            .where(and_(True, *_period(start, end, coin))))).scalar_one())

    async def by_txid(self, txid: str) -> list[LedgerRow]:
        rows = await self._conn.execute(
            _joined().where(payments.c.txid == txid)
            .order_by(payments.c.coin, payments.c.output_index))
        return [_row(r) for r in rows]

    async def invoice_keys(self, coin: str) -> dict[bytes, str]:
        """Every match key ever handed out for the coin, with its invoice."""
        rows = await self._conn.execute(
            select(invoices.c.match_key, invoices.c.id).where(invoices.c.coin == coin))
        return {bytes(r.match_key): str(r.id) for r in rows}
