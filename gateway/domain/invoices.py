"""The invoice state machine: two axes (status, exception), as BTCPay has them.

Every transition is a pure function of (invoice, observed payments, now, block-time
tolerance); confirmations are computed by the caller from the chain tip and the block
that holds each payment."""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from gateway.domain import events as ev
from gateway.domain.money import Fiat, format_units
from gateway.domain.states import InvoiceException as InvoiceException
from gateway.domain.states import Status as Status

# How far a block's own timestamp may be trusted in the customer's favour: miners' clocks
# drift (consensus accepts a header up to 2 h ahead), and a transaction waits in the
# mempool for a block. Configurable as [invoices] block_time_tolerance_minutes.
DEFAULT_BLOCK_TIME_TOLERANCE = timedelta(minutes=10)


@dataclass(frozen=True)
class LockedRate:
    value: str  # fiat per whole coin, decimal string
    source: str
    locked_at: datetime


@dataclass(frozen=True)
class ObservedPayment:
    """A payment to this invoice's address as the chain shows it now."""

    txid: str
    index: int
    amount: int
    confirmations: int  # 0 while unconfirmed or after its block left the main chain
    seen_at: datetime  # when the watcher first saw it (mempool or block)
    reverted: bool = False  # replaced, double-spent or otherwise gone for good
    # Header time of the block the watcher first saw it in; None when first seen in the
    # mempool (our own sighting is then the evidence, a later block adds nothing).
    block_time: datetime | None = None
    # Its lock (a height or time before which it may not count) has not passed yet: it is
    # received, but does not count towards settlement.
    locked: bool = False
    lock_height: int | None = None  # the lock itself, passed or not
    lock_time: datetime | None = None

    def paid_at(self, tolerance: timedelta = DEFAULT_BLOCK_TIME_TOLERANCE) -> datetime:
        """The earliest trustworthy evidence that this payment was made.

        Seen in the mempool: that moment. First seen in a block (the gateway was down,
        or the block came before the next mempool poll): the transaction existed when the
        block was mined, so the block's time counts, less `tolerance` for a miner's fast
        clock and the wait for the block; never later than our own sighting."""
        if self.block_time is None:
            return self.seen_at
        return min(self.seen_at, self.block_time - tolerance)


@dataclass(frozen=True)
class InvoiceTerms:
    """What was agreed when the invoice was created; never changes afterwards."""

    amount_due: int
    decimals: int
    confirmations_required: int
    expires_at: datetime
    monitoring_until: datetime
    tolerance_basis_points: int = 0
    accept_late_payments: bool = False

    @property
    def threshold(self) -> int:
        """Smallest amount that counts as paid in full."""
        return self.amount_due - (self.amount_due * self.tolerance_basis_points) // 10_000


@dataclass
class Invoice:
    id: str
    account_id: str
    coin: str
    price: Fiat
    rate: LockedRate
    terms: InvoiceTerms
    created_at: datetime
    metadata: dict[str, object] = field(default_factory=dict)
    status: Status = Status.NEW
    exception: InvoiceException | None = None
    settled_at: datetime | None = None
    events: list[ev.DomainEvent] = field(default_factory=list)

    # -- events ------------------------------------------------------------------------
    def _summary(self, payments: Sequence[ObservedPayment] = ()) -> dict[str, Any]:
        """The fields of `ev.InvoiceEvent` (the invoice summary of every event)."""
        live = [p for p in payments if not p.reverted]
        return {
            "invoice_id": self.id,
            "account_id": self.account_id,
            "status": self.status,
            "exception": self.exception,
            "coin": self.coin,
            "amount_due": format_units(self.terms.amount_due, self.terms.decimals),
            "amount_due_base_units": str(self.terms.amount_due),
            "amount_paid": format_units(sum(p.amount for p in live), self.terms.decimals),
            "price": ev.Price(self.price.as_decimal_string(), self.price.currency),
            "rate": self._rate(),
            "metadata": dict(self.metadata),
        }

    def _rate(self) -> ev.Rate:
        return ev.Rate(self.rate.value, self.rate.source, self.rate.locked_at)

    def _emit(self, kind: type[ev.InvoiceEvent], payments: Sequence[ObservedPayment]) -> None:
        self.events.append(kind(**self._summary(payments)))

    def created(self) -> None:
        self._emit(ev.InvoiceCreated, ())

    def payment_received(self, payment: ObservedPayment) -> None:
        """Called once per newly recorded payment (the store makes recording idempotent)."""
        received = ev.ReceivedPayment(
            txid=payment.txid,
            index=payment.index,
            amount=format_units(payment.amount, self.terms.decimals),
            amount_base_units=str(payment.amount),
            coin=self.coin,
            confirmations=payment.confirmations,
            # Received, but held from counting until then (Monero's unlock_time).
            locked_until=ev.LockedUntil(payment.lock_height, payment.lock_time)
            if payment.locked else None,
            rate=self._rate(),
        )
        self.events.append(ev.InvoicePaymentReceived(**self._summary(), payment=received))

    # -- the state machine --------------------------------------------------------------
    def observe(
        self, payments: Sequence[ObservedPayment], now: datetime,
        block_time_tolerance: timedelta = DEFAULT_BLOCK_TIME_TOLERANCE,
    ) -> None:
        """Bring status and exception in line with the payments and the time."""
        seen = Tally.of(payments, self.terms, block_time_tolerance)
        if self.status is Status.SETTLED:
            self._check_still_paid(seen, payments)
            return
        if self.status is Status.INVALID:
            return
        is_open = self.status in (Status.NEW, Status.PROCESSING)
        # Expired for want of a payment that, as the chain now shows (the watcher caught
        # up after downtime), was made in time: the expiry was ours, not the customer's.
        if seen.on_time and (is_open or self.status is Status.EXPIRED):
            self._paid_in_time(seen, payments, now)
        elif not is_open or self._not_paid(seen, payments, now):
            self._paid_late(seen, payments, now)

    def _check_still_paid(self, seen: "Tally", payments: Sequence[ObservedPayment]) -> None:
        """Settled is final; a payment that settled it and then left the chain is told."""
        if (seen.in_chain < self.terms.threshold
                and self.exception is not InvoiceException.REVERTED_AFTER_SETTLEMENT):
            self.exception = InvoiceException.REVERTED_AFTER_SETTLEMENT
            self._emit(ev.InvoicePaymentReverted, payments)

    def _paid_in_time(self, seen: "Tally", payments: Sequence[ObservedPayment],
                      now: datetime) -> None:
        terms = self.terms
        self.exception = InvoiceException.PAID_OVER if seen.received > terms.amount_due else None
        if seen.confirmed >= terms.threshold:
            self._settle(payments, now)
        elif now >= terms.monitoring_until:
            self.status = Status.INVALID
            self._emit(ev.InvoiceInvalid, payments)
        elif self.status is not Status.PROCESSING:
            self.status = Status.PROCESSING
            self._emit(ev.InvoiceProcessing, payments)

    def _not_paid(self, seen: "Tally", payments: Sequence[ObservedPayment],
                  now: datetime) -> bool:
        """Not (or no longer) paid in full in time: a payment may have left the chain, and
        a receiver that acted on `invoice.processing` is told it no longer holds. True
        when the invoice has expired (now or before)."""
        was_processing = self.status is Status.PROCESSING
        self.status = Status.NEW
        self.exception = InvoiceException.PAID_PARTIAL if seen.received > 0 else None
        if was_processing:
            self._emit(ev.InvoiceProcessingReverted, payments)
        if now < self.terms.expires_at:
            return False
        self.status = Status.EXPIRED
        self._emit(ev.InvoiceExpired, payments)
        return True

    def _paid_late(self, seen: "Tally", payments: Sequence[ObservedPayment],
                   now: datetime) -> None:
        """EXPIRED: a full payment completed late, inside the monitoring window."""
        terms = self.terms
        if seen.paid_at is not None and seen.paid_at < terms.monitoring_until:
            self.exception = InvoiceException.PAID_LATE
            if terms.accept_late_payments and seen.confirmed >= terms.threshold:
                self._settle(payments, now)

    def withdraw(self, now: datetime) -> bool:
        """Replaced by another invoice before anything was paid to it (a renewal whose
        coin or plan changed): it expires now, and a payment made from now on counts as
        late, so replacing an invoice never leaves two payable at their own locked
        rates. False (nothing changes) once it is no longer new."""
        if self.status is not Status.NEW:
            return False
        self.terms = replace(self.terms, expires_at=min(self.terms.expires_at, now))
        self.status = Status.EXPIRED
        self._emit(ev.InvoiceExpired, ())
        return True

    def _settle(self, payments: Sequence[ObservedPayment], now: datetime) -> None:
        self.status = Status.SETTLED
        self.settled_at = now
        self._emit(ev.InvoiceSettled, payments)


@dataclass(frozen=True)
class Tally:
    """What the payments add up to, for the state machine."""

    received: int  # every live payment, confirmed or not
    confirmed: int  # those at the required depth whose lock has passed
    in_chain: int  # those in a block of the main chain
    paid_at: datetime | None  # when the live payments completed the amount
    # Paid in full before expiry. Lateness is judged from the payments that settle the
    # invoice, each by its own evidence: an early mempool sighting of a transaction that
    # never confirms must not make a different, late payment on time. While the
    # confirmed payments alone complete late, the invoice is late (a pending early one
    # that confirms later makes it on time again, and it settles then).
    on_time: bool

    @classmethod
    def of(cls, payments: Sequence[ObservedPayment], terms: InvoiceTerms,
           tolerance: timedelta = DEFAULT_BLOCK_TIME_TOLERANCE) -> "Tally":
        live = [p for p in payments if not p.reverted]
        counted = [p for p in live
                   if p.confirmations >= terms.confirmations_required and not p.locked]
        confirmed = sum(p.amount for p in counted)
        paid_at = completion_time(live, terms.threshold, tolerance)
        settled_by = completion_time(counted, terms.threshold, tolerance)
        late_when_confirmed = (confirmed >= terms.threshold and settled_by is not None
                               and settled_by >= terms.expires_at)
        return cls(
            received=sum(p.amount for p in live),
            confirmed=confirmed,
            in_chain=sum(p.amount for p in live if p.confirmations >= 1),
            paid_at=paid_at,
            on_time=(paid_at is not None and paid_at < terms.expires_at
                     and not late_when_confirmed),
        )


def completion_time(
    live: Sequence[ObservedPayment], threshold: int,
    tolerance: timedelta = DEFAULT_BLOCK_TIME_TOLERANCE,
) -> datetime | None:
    """When the running total of live payments, in order of their evidence (`paid_at`),
    reached the threshold; the invoice was paid late when that is not before expiry."""
    total = 0
    for when, payment in sorted(((p.paid_at(tolerance), p) for p in live),
                                key=lambda w: (w[0], w[1].txid, w[1].index)):
        total += payment.amount
        if total >= threshold:
            return when
    return None
