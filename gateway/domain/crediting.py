"""Which paid outputs become account credit, and when (docs/credit.md "What is credited").

Pure: the invoice, its payments as the chain shows them now, and the time come in; what
is owed comes out, each item under the cause that makes it written once. A payment is
credited once it is *final* (at its invoice's required depth, not locked, not reverted)
and its invoice can no longer use it:

- a SETTLED invoice: what the payments made before settlement received beyond what the
  invoice asked for (beyond the whole periods it bought) -> one OVERPAID item, at the
  locked rate; every output paid after settlement -> LATE;
- an EXPIRED invoice that can no longer settle (late payments not accepted, or its
  monitoring window over): each output -> UNDERPAID when paid before expiry, else LATE;
  while late payments may still settle it, nothing yet;
- an INVALID invoice (paid in time, not confirmed before monitoring ended): the same.

An output paid before expiry converts at the invoice's locked rate, a later one at the
median rate of the moment it is credited."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.domain.credit import CreditKind, payment_cause
from gateway.domain.invoices import (
    DEFAULT_BLOCK_TIME_TOLERANCE,
    Invoice,
    ObservedPayment,
    Status,
)


@dataclass(frozen=True)
class CreditRules:
    """`[credit]` underpaid_to_credit, overpaid_to_credit, late_to_credit."""

    underpaid: bool = True
    overpaid: bool = True
    late: bool = True

    def allows(self, kind: CreditKind) -> bool:
        return {CreditKind.UNDERPAID: self.underpaid, CreditKind.OVERPAID: self.overpaid,
                CreditKind.LATE: self.late}.get(kind, False)


@dataclass(frozen=True)
class Owed:
    """Coins of one invoice owed to its account as credit (not yet converted)."""

    kind: CreditKind
    cause: str
    txid: str  # the output credited (for an overpayment: the one that made it overpaid)
    index: int
    crypto_amount: int
    at_locked_rate: bool  # paid before expiry: the invoice's rate; else the median's


def overpaid_cause(invoice_id: str) -> str:
    return f"overpaid:{invoice_id}"


def reverted_cause(cause: str) -> str:
    """The correction of a credited payment that reverted for good."""
    return f"revert:{cause}"


def spend_cause(invoice_id: str) -> str:
    return f"spend:{invoice_id}"


def period_spend_cause(plan: str, paid_until: datetime | None) -> str:
    """A period bought from credit alone: named by the end it extends (one per period)."""
    end = paid_until.strftime("%Y-%m-%dT%H:%M:%SZ") if paid_until else "first"
    return f"spend:{plan}:{end}"


def unspend_cause(invoice_id: str) -> str:
    return f"unspend:{invoice_id}"


def is_final(p: ObservedPayment, invoice: Invoice) -> bool:
    return (not p.reverted and not p.locked
            and p.confirmations >= invoice.terms.confirmations_required)


def can_still_settle(invoice: Invoice, now: datetime) -> bool:
    """An expired invoice that takes late payments is waited for until monitoring ends."""
    return (invoice.status in (Status.NEW, Status.PROCESSING)
            or (invoice.status is Status.EXPIRED and invoice.terms.accept_late_payments
                and now < invoice.terms.monitoring_until))


def owed(invoice: Invoice, payments: Sequence[ObservedPayment], now: datetime,
         rules: CreditRules = CreditRules(), periods_bought: int = 1,
         tolerance: timedelta = DEFAULT_BLOCK_TIME_TOLERANCE) -> list[Owed]:
    """What of `invoice`'s payments is owed as credit now (already credited or not: the
    caller writes each cause once)."""
    if invoice.status is Status.SETTLED:
        found = _settled(invoice, payments, periods_bought, tolerance)
    elif invoice.status in (Status.EXPIRED, Status.INVALID) and not can_still_settle(
            invoice, now):
        found = [_output(invoice, p, tolerance) for p in payments if is_final(p, invoice)]
    else:
        found = []
    return [o for o in found if rules.allows(o.kind)]


def _paid_in_time(invoice: Invoice, p: ObservedPayment, tolerance: timedelta) -> bool:
    return p.paid_at(tolerance) < invoice.terms.expires_at


def _output(invoice: Invoice, p: ObservedPayment, tolerance: timedelta,
            late: bool = False) -> Owed:
    on_time = _paid_in_time(invoice, p, tolerance)
    kind = CreditKind.UNDERPAID if on_time and not late else CreditKind.LATE
    return Owed(kind, payment_cause(invoice.coin, p.txid, p.index), p.txid, p.index,
                p.amount, on_time)


def _settled(invoice: Invoice, payments: Sequence[ObservedPayment], periods: int,
             tolerance: timedelta) -> list[Owed]:
    settled_at = invoice.settled_at or invoice.created_at
    live = [p for p in payments if not p.reverted]
    before = sorted((p for p in live if p.seen_at <= settled_at),
                    key=lambda p: (p.paid_at(tolerance), p.txid, p.index))
    found = [_output(invoice, p, tolerance, late=True) for p in live
             if p.seen_at > settled_at and is_final(p, invoice)]
    excess = sum(p.amount for p in before) - invoice.terms.amount_due * max(periods, 1)
    if excess > 0 and all(is_final(p, invoice) for p in before):
        last = before[-1]
        found.insert(0, Owed(CreditKind.OVERPAID, overpaid_cause(invoice.id), last.txid,
                             last.index, excess, True))
    return found


def lost(invoice: Invoice, payments: Sequence[ObservedPayment]) -> list[str]:
    """The causes a reverted payment may have been credited under: its own, and the
    invoice's overpayment when it was one of the payments before settlement."""
    causes = [payment_cause(invoice.coin, p.txid, p.index) for p in payments if p.reverted]
    settled_at = invoice.settled_at
    if settled_at is not None and any(p.reverted and p.seen_at <= settled_at
                                      for p in payments):
        causes.append(overpaid_cause(invoice.id))
    return causes
