"""Payments for finance: every output we recorded, with its fiat value at the rate the
invoice locked, and confirmations as far as the watcher has processed the chain."""

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from gateway.domain.credit import CreditEntry, signed_fiat
from gateway.domain.errors import InvalidInput
from gateway.domain.money import Fiat, base_units_to_fiat_minor, format_units
from gateway.domain.payments import confirmations
from gateway.domain.refunds import Refund
from gateway.domain.timestamps import rfc3339
from gateway.domain.vouchers import VoucherBatch, voucher_cause
from gateway.services.ports import FinanceUnit, LedgerRow

COLUMNS = ("time", "invoice_id", "account_id", "coin", "txid", "output_index", "amount",
           "amount_base_units", "fiat_value", "fiat_currency", "confirmations", "status", "asset",
           "plan", "period_start", "period_end")


@dataclass(frozen=True)
class PaymentLine:
    row: LedgerRow
    confirmations: int
    asset: str = ""  # a token's contract address; empty for a chain's native coin

    def as_dict(self) -> dict[str, str | int]:
        r = self.row
        minor = base_units_to_fiat_minor(r.amount, Decimal(r.rate), r.decimals,
                                         r.fiat_currency)
        return {
            "time": rfc3339(r.seen_at), "invoice_id": r.invoice_id, "account_id": r.account_id,
            "coin": r.coin, "txid": r.txid, "output_index": r.output_index,
            "amount": format_units(r.amount, r.decimals), "amount_base_units": str(r.amount),
            "fiat_value": Fiat(minor, r.fiat_currency).as_decimal_string(),
            "fiat_currency": r.fiat_currency, "confirmations": self.confirmations,
            "status": r.status, "asset": self.asset, "plan": r.plan or "",
            "period_start": rfc3339(r.period_start) if r.period_start else "",
            "period_end": rfc3339(r.period_end) if r.period_end else "",
        }


CREDIT_COLUMNS = ("time", "account_id", "kind", "amount", "currency", "invoice_id",
                  "refund_id", "coin", "txid", "output_index", "amount_base_units", "rate",
                  "rate_source", "reason", "cause", "voucher_batch")
# Voucher batches for finance (docs/vouchers.md): what was sold, and redeemed.
VOUCHER_COLUMNS = ("batch", "created_at", "label", "value", "currency", "plan", "periods",
                   "count", "sold", "sold_value", "redeemed", "redeemed_value",
                   "redeemed_in_period", "state", "expires_at", "revoked_at")


def _time(value: datetime | None) -> str:
    return rfc3339(value) if value is not None else ""


def voucher_line(b: VoucherBatch, in_period: int, now: datetime) -> dict[str, str | int]:
    """One batch: codes sold (all of them, or only those redeemed once it was revoked),
    redeemed so far and within the period; never a code."""
    sold = b.redeemed if b.revoked_at is not None else b.count
    return {
        "batch": b.id, "created_at": rfc3339(b.created_at), "label": b.label,
        "value": b.value.as_decimal_string(), "currency": b.value.currency,
        "plan": b.plan or "", "periods": b.periods, "count": b.count, "sold": sold,
        "sold_value": signed_fiat(sold * b.value.minor, b.value.currency),
        "redeemed": b.redeemed,
        "redeemed_value": signed_fiat(b.redeemed_value, b.value.currency),
        "redeemed_in_period": in_period, "state": b.state(now).value,
        "expires_at": _time(b.expires_at), "revoked_at": _time(b.revoked_at)}


def credit_line(e: CreditEntry, refund: Refund | None = None,
                voucher_batch: str = "") -> dict[str, str | int]:
    """One credit ledger entry for finance (docs/credit.md): credits and spends, with the
    payment (txid) a credit came from and the rate it was converted at; a refund's entry
    with the refund's coin, base units, rate and txid once approved and paid."""
    c = e.conversion
    if c is None and refund is not None and refund.quote is not None:
        return {**credit_line(e), "coin": refund.coin, "txid": refund.txid or "",
                "amount_base_units": str(refund.quote.crypto_amount),
                "rate": refund.quote.rate, "rate_source": "median at approval"}
    return {
        "time": rfc3339(e.created_at), "account_id": e.account_id, "kind": e.kind.value,
        "amount": signed_fiat(e.amount, e.currency), "currency": e.currency,
        "invoice_id": e.invoice_id or "", "refund_id": e.refund_id or "",
        "coin": c.coin if c else "", "txid": c.txid if c else "",
        "output_index": c.output_index if c else "",
        "amount_base_units": str(c.crypto_amount) if c else "",
        "rate": c.rate if c else "", "rate_source": c.rate_source if c else "",
        "reason": e.reason.value if e.reason else "", "cause": e.cause,
        "voucher_batch": voucher_batch,
    }


@dataclass(frozen=True)
class Period:
    start: datetime | None = None
    end: datetime | None = None
    coin: str | None = None

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise InvalidInput(name, "needs a time zone, e.g. 2026-01-01T00:00:00Z")
        if self.start and self.end and self.end <= self.start:
            raise InvalidInput("to", "must be after from")


class FinanceService:
    def __init__(self, uow: Callable[[], FinanceUnit], coins: tuple[str, ...],
                 feed_of: Callable[[str], str] = lambda coin: coin,
                 assets: Mapping[str, str] | None = None,
                 reader: Callable[[], FinanceUnit] | None = None) -> None:
        self._uow = uow
        self._reader = reader or uow  # reads only: no write turn, no write lock
        self._assets = dict(assets or {})  # coin -> token contract (finance must know which)
        self._coins = coins
        self._feed_of = feed_of  # coin -> the feed whose cursor its confirmations count from

    def _check(self, period: Period) -> None:
        if period.coin is not None and period.coin not in self._coins:
            raise InvalidInput("coin", f"must be one of {', '.join(self._coins)}")

    async def page(self, period: Period, after: int | None = None,
                   limit: int = 100) -> list[PaymentLine]:
        self._check(period)
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit", "must be between 1 and 1000")
        async with self._reader() as uow:
            rows = await uow.ledger.page(period.start, period.end, period.coin, after, limit)
            return await self._lines(uow, rows)

    async def by_txid(self, txid: str) -> list[PaymentLine]:
        async with self._reader() as uow:
            return await self._lines(uow, await uow.ledger.by_txid(txid))

    async def count(self, period: Period) -> int:
        self._check(period)
        async with self._reader() as uow:
            return await uow.ledger.count(period.start, period.end, period.coin)

    async def stream(self, period: Period, batch: int = 500) -> AsyncIterator[PaymentLine]:
        """Every line of the period, a batch per transaction, so memory stays flat."""
        after: int | None = None
        while True:
            lines = await self.page(period, after, batch)
            for line in lines:
                yield line
            if len(lines) < batch:
                return
            after = lines[-1].row.id

    async def credit(self, period: Period) -> list[dict[str, str | int]]:
        """Every credit ledger entry written in the period, oldest first (all coins: a
        spend or an adjustment has none)."""
        start = period.start or datetime(1970, 1, 1, tzinfo=UTC)
        end = period.end or datetime(9999, 1, 1, tzinfo=UTC)
        async with self._reader() as uow:
            entries = await uow.credit.between(start, end)
            refunds = {i: await uow.refunds.get(i)
                       for i in sorted({e.refund_id for e in entries if e.refund_id})}
            batches = {voucher_cause(r.voucher.id): r.batch.id
                       for r in await uow.vouchers.redeemed_between(start, end)}
        lines = [credit_line(e, refunds.get(e.refund_id or ""), batches.get(e.cause, ""))
                 for e in entries]
        return [line for line in lines if period.coin is None or line["coin"] == period.coin]

    async def vouchers(self, period: Period, now: datetime) -> list[dict[str, str | int]]:
        """Every voucher batch, newest first: sold and redeemed (in all, and within the
        period)."""
        start = period.start or datetime(1970, 1, 1, tzinfo=UTC)
        end = period.end or datetime(9999, 1, 1, tzinfo=UTC)
        async with self._reader() as uow:
            batches = await uow.vouchers.batches(limit=10_000)
            redeemed = await uow.vouchers.redeemed_between(start, end)
        in_period: dict[str, int] = {}
        for r in redeemed:
            in_period[r.batch.id] = in_period.get(r.batch.id, 0) + 1
        return [voucher_line(b, in_period.get(b.id, 0), now) for b in batches]

    async def _lines(self, uow: FinanceUnit, rows: list[LedgerRow]) -> list[PaymentLine]:
        tips = {c: await uow.cursors.get(self._feed_of(c)) for c in {r.coin for r in rows}}
        lines = []
        for r in rows:
            tip = tips[r.coin]
            lines.append(PaymentLine(r, confirmations(
                r.status, r.block_height, None if tip is None else tip.height),
                self._assets.get(r.coin, "")))
        return lines
