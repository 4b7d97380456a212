"""The account credit ledger in the database (`credit_entries`, docs/credit.md): appended
to, never changed; one entry per account and cause, whichever instance writes it first."""

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, exists, func, insert, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.tables import credit_entries, invoices, payments
from gateway.domain.credit import AdjustmentReason, Conversion, CreditEntry, CreditKind
from gateway.domain.payments import PaymentStatus
from gateway.domain.states import InvoiceException, Status

_c = credit_entries.c
_i, _p = invoices.c, payments.c
_DONE = [Status.SETTLED.value, Status.EXPIRED.value, Status.INVALID.value]


_other = credit_entries.alias("other_entries")


def _has(cause: ColumnElement[str]) -> ColumnElement[bool]:
    """The invoice's account has an entry with this cause."""
    o = _other.c
    return exists().where(o.account_id == _i.account_id, o.cause == cause)


def _text(*parts: ColumnElement[Any] | str) -> ColumnElement[str]:
    out: ColumnElement[str] = literal("", String)
    for part in parts:
        out = out + (literal(part, String) if isinstance(part, str) else part)
    return out


def _may_still_settle(now: datetime) -> ColumnElement[bool]:
    return and_(_i.status == Status.EXPIRED.value, _i.accept_late_payments.is_(True),
                _i.monitoring_until > now)


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

    async def add(self, entry: CreditEntry) -> bool:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(insert(credit_entries).values(_values(entry)))
        except IntegrityError:
            return False
        return True

    async def find(self, account_id: str, cause: str) -> CreditEntry | None:
        row = (await self._conn.execute(select(credit_entries).where(
            _c.account_id == account_id, _c.cause == cause))).first()
        return entry_of(row) if row else None

    async def balance(self, account_id: str, currency: str | None = None) -> int:
        query = select(func.coalesce(func.sum(_c.amount), 0)).where(
            _c.account_id == account_id)
        if currency is not None:
            query = query.where(_c.currency == currency)
        return int((await self._conn.execute(query)).scalar_one())

    async def entries(self, account_id: str, limit: int = 100,
                      before_id: int | None = None) -> list[CreditEntry]:
        query = select(credit_entries).where(_c.account_id == account_id)
        if before_id is not None:
            query = query.where(_c.id < before_id)
        rows = await self._conn.execute(query.order_by(_c.id.desc()).limit(limit))
        return [entry_of(r) for r in rows]

    async def candidates(self, since: datetime, now: datetime,
                         limit: int = 500) -> list[str]:
        """Invoices (expired since `since`, by the status index) that may owe credit or
        take it back: a confirmed payment of a done invoice not yet credited, a credited
        one reverted since, an overpaid (or late-settled) one without its entry, a spend
        of an invoice that expired unpaid not yet given back."""
        cause = _text("payment:", _p.coin, ":", _p.txid, ":", cast(_p.output_index, String))
        overpaid = _text("overpaid:", _i.id)
        recent = and_(_i.status.in_(_DONE), _i.expires_at >= since,
                      ~_may_still_settle(now))
        confirmed, reverted = PaymentStatus.CONFIRMED.value, PaymentStatus.REVERTED.value
        by_payment = (
            select(_i.id).join(payments, _p.invoice_id == _i.id).where(recent, or_(
                and_(_p.status == confirmed, _i.status != Status.SETTLED.value,
                     ~_has(cause)),
                and_(_p.status == confirmed, _i.status == Status.SETTLED.value,
                     _p.seen_at > _i.settled_at, ~_has(cause)),
                and_(_p.status == reverted, _has(cause), ~_has(_text("revert:", cause))),
                # credited while expired, then settled by it (paid in time after all)
                and_(_p.status != reverted, _i.status == Status.SETTLED.value,
                     _p.seen_at <= _i.settled_at, _has(cause),
                     ~_has(_text("revert:", cause))),
                and_(_p.status == reverted, _has(overpaid),
                     ~_has(_text("revert:", overpaid))),
            )))
        over = select(_i.id).where(
            recent, _i.status == Status.SETTLED.value,
            _i.exception.in_([InvoiceException.PAID_OVER.value,
                              InvoiceException.PAID_LATE.value]), ~_has(overpaid))
        spent = select(_i.id).join(credit_entries, _c.invoice_id == _i.id).where(
            recent, _i.status != Status.SETTLED.value, _c.kind == CreditKind.SPENT.value,
            ~_has(_text("unspend:", _i.id)))
        found: set[str] = set()
        for query in (by_payment, over, spent):
            rows = await self._conn.execute(query.distinct().limit(limit))
            found.update(str(r) for r in rows.scalars())
        return sorted(found)[:limit]

    async def aged(self, cutoff: datetime, limit: int = 500) -> list[str]:
        """Accounts with credit written before `cutoff` and a positive balance: what the
        expiry may take (`CreditService`, `[credit] expires_after_days`)."""
        rows = await self._conn.execute(
            select(_c.account_id).group_by(_c.account_id)
            .having(and_(func.sum(_c.amount) > 0,
                         func.min(_c.created_at) < cutoff)).limit(limit))
        return [str(r) for r in rows.scalars()]

    async def between(self, start: datetime, end: datetime) -> list[CreditEntry]:
        rows = await self._conn.execute(
            select(credit_entries).where(_c.created_at >= start, _c.created_at < end)
            .order_by(_c.id))
        return [entry_of(r) for r in rows]
