"""The account credit ledger in the database (`credit_entries`, docs/credit.md): appended
to, never changed; one entry per account and cause, whichever instance writes it first."""

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.tables import credit_entries
from gateway.domain.credit import AdjustmentReason, Conversion, CreditEntry, CreditKind

_c = credit_entries.c


def _values(e: CreditEntry) -> dict[str, Any]:
    values: dict[str, Any] = {
        "account_id": e.account_id, "kind": e.kind.value, "amount": e.amount,
        "currency": e.currency, "cause": e.cause, "created_at": e.created_at,
        "invoice_id": e.invoice_id, "refund_id": e.refund_id,
        "reason": e.reason.value if e.reason else None, "note": e.note,
        "staff_id": e.staff_id}
    if (c := e.conversion) is not None:
        values.update(coin=c.coin, txid=c.txid, output_index=c.output_index,
                      crypto_amount=c.crypto_amount, decimals=c.decimals, rate=c.rate,
                      rate_source=c.rate_source)
    return values


def entry_of(r: Any) -> CreditEntry:
    conversion = None
    if r.coin is not None:
        conversion = Conversion(r.coin, r.txid, r.output_index, r.crypto_amount, r.decimals,
                                r.rate, r.rate_source)
    return CreditEntry(
        account_id=r.account_id, kind=CreditKind(r.kind), amount=int(r.amount),
        currency=r.currency, cause=r.cause, created_at=r.created_at,
        invoice_id=r.invoice_id, refund_id=r.refund_id, conversion=conversion,
        reason=AdjustmentReason(r.reason) if r.reason else None, note=r.note,
        staff_id=r.staff_id, id=int(r.id))


class SqlCreditLedger:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self.added: list[CreditEntry] = []  # written in this transaction

    async def add(self, entry: CreditEntry) -> bool:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(insert(credit_entries).values(_values(entry)))
        except IntegrityError:
            return False
        self.added.append(entry)
        return True

    async def find(self, account_id: str, cause: str) -> CreditEntry | None:
        row = (await self._conn.execute(select(credit_entries).where(
            _c.account_id == account_id, _c.cause == cause))).first()
        return entry_of(row) if row else None

    async def balance(self, account_id: str) -> int:
        return int((await self._conn.execute(
            select(func.coalesce(func.sum(_c.amount), 0))
            .where(_c.account_id == account_id))).scalar_one())

    async def entries(self, account_id: str, limit: int = 100,
                      before_id: int | None = None) -> list[CreditEntry]:
        query = select(credit_entries).where(_c.account_id == account_id)
        if before_id is not None:
            query = query.where(_c.id < before_id)
        rows = await self._conn.execute(query.order_by(_c.id.desc()).limit(limit))
        return [entry_of(r) for r in rows]

    async def between(self, start: datetime, end: datetime) -> list[CreditEntry]:
        rows = await self._conn.execute(
            select(credit_entries).where(_c.created_at >= start, _c.created_at < end)
            .order_by(_c.id))
        return [entry_of(r) for r in rows]
