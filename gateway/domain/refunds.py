"""Refunds: credit a customer asks back, paid by the operator's own wallet to an address
the customer names (docs/refunds.md). The gateway never signs: staff with the finance
role approve (two different members above a threshold) and the gateway then prepares
what the operator's wallet signs and sends.

    requested -> approved -> sent -> completed
    requested -> refused | cancelled          (final; the held credit is returned)
    sent -> approved                          (the matching payment left the chain)

The amount is held from the balance by a `refund` ledger entry when the refund is
requested, and given back by a `refund_returned` entry when it is refused or cancelled.
Pure: no I/O, the clock passed in."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from gateway.domain.credit import CreditEntry, CreditKind
from gateway.domain.errors import DomainError, InvalidInput
from gateway.domain.events import (
    DomainEvent,
    RefundApproved,
    RefundCancelled,
    RefundCompleted,
    RefundRefused,
    RefundRequested,
)
from gateway.domain.money import Fiat

REASON_MAX = 500


class RefundStatus(StrEnum):
    """Stored and shown in the API, the portal and webhooks: never renamed."""

    REQUESTED = "requested"
    APPROVED = "approved"
    SENT = "sent"
    COMPLETED = "completed"
    REFUSED = "refused"
    CANCELLED = "cancelled"


FINAL = frozenset({RefundStatus.COMPLETED, RefundStatus.REFUSED, RefundStatus.CANCELLED})


class RefundStateError(DomainError):
    """A step the refund's status does not allow (HTTP 409); the message says why."""


class SameApprover(RefundStateError):
    def __init__(self) -> None:
        super().__init__("you already approved this refund; a second approval must come "
                         "from another finance member")


@dataclass(frozen=True)
class Approval:
    staff_id: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class Quote:
    """Fixed by the approval that makes a refund approved: what the customer receives in
    the coin's base units, at the median rate of that moment, and what the operator's
    wallet is given to sign and send."""

    crypto_amount: int
    rate: str  # fiat per whole coin
    uri: str
    psbt: str | None = None
    fee: int | None = None
    spends: tuple[tuple[str, int], ...] = ()
    change_index: int | None = None  # below the xpub's change branch, when a PSBT has change


def refund_cause(refund_id: str) -> str:
    return f"refund:{refund_id}"


def returned_cause(refund_id: str) -> str:
    return f"refund-returned:{refund_id}"


def clean_reason(reason: object, what: str = "reason") -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise InvalidInput(what, f"a {what} is required")
    if len(text) > REASON_MAX:
        raise InvalidInput(what, f"at most {REASON_MAX} characters")
    return text


def approvals_needed(amount: int, second_approval_above: int | None) -> int:
    """Two different members above the threshold (minor units), one otherwise."""
    return 2 if second_approval_above is not None and amount > second_approval_above else 1


@dataclass
class Refund:
    id: str
    account_id: str
    amount: int  # minor units of `currency`
    currency: str
    coin: str
    address: str | None  # None once retention erased it
    requested_at: datetime
    approvals_needed: int = 1
    status: RefundStatus = RefundStatus.REQUESTED
    approvals: list[Approval] = field(default_factory=list)
    refused_reason: str | None = None
    refused_by: str | None = None
    quote: Quote | None = None
    txid: str | None = None
    tx_key: str | None = None  # Monero's proof of payment; erased with the address
    decided_at: datetime | None = None  # approved, refused or cancelled
    sent_at: datetime | None = None
    completed_at: datetime | None = None
    events: list[DomainEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.requested_at.tzinfo is None:
            raise ValueError("requested_at must be UTC-aware")
        if self.amount <= 0:
            raise InvalidInput("amount", "must be more than zero")

    @classmethod
    def request(cls, *, id: str, account_id: str, amount: int, currency: str, coin: str,
                address: str, now: datetime, approvals_needed: int = 1) -> "Refund":
        refund = cls(id=id, account_id=account_id, amount=amount, currency=currency,
                     coin=coin, address=address, requested_at=now,
                     approvals_needed=approvals_needed)
        refund.events.append(RefundRequested(account_id, id, refund.amount_text, currency,
                                             coin, approvals_needed))
        return refund

    @property
    def amount_text(self) -> str:
        return Fiat(self.amount, self.currency).as_decimal_string()

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def approvals_missing(self) -> int:
        return max(0, self.approvals_needed - len(self.approvals))

    def hold_entry(self) -> CreditEntry:
        """The ledger entry that holds the amount while the refund is open."""
        return CreditEntry(self.account_id, CreditKind.REFUND, -self.amount, self.currency,
                           refund_cause(self.id), self.requested_at, refund_id=self.id)

    def return_entry(self, now: datetime) -> CreditEntry:
        """The entry that gives the held amount back (refused or cancelled)."""
        return CreditEntry(self.account_id, CreditKind.REFUND_RETURNED, self.amount,
                           self.currency, returned_cause(self.id), now, refund_id=self.id)

    def _require(self, status: RefundStatus, doing: str) -> None:
        if self.status is not status:
            raise RefundStateError(f"this refund is {self.status}; only a {status} refund "
                                   f"can be {doing}")

    def check_approval(self, staff_id: str) -> bool:
        """Whether an approval by `staff_id` would be the last one needed; raises when it
        may not approve (not pending, or already approved by this member)."""
        self._require(RefundStatus.REQUESTED, "approved")
        if any(a.staff_id == staff_id for a in self.approvals):
            raise SameApprover()
        return self.approvals_missing == 1

    def approve(self, staff_id: str, reason: str, now: datetime,
                quote: Quote | None = None) -> bool:
        """Records the approval; with the last one needed (`quote` then required) the
        refund is approved. True when it is."""
        last = self.check_approval(staff_id)
        text = clean_reason(reason)
        if last and quote is None:
            raise ValueError("the last approval fixes the quote")
        self.approvals.append(Approval(staff_id, text, now))
        if not last:
            return False
        assert quote is not None
        self.status, self.quote, self.decided_at = RefundStatus.APPROVED, quote, now
        self.events.append(RefundApproved(self.account_id, self.id, self.amount_text,
                                          self.currency, self.coin, str(quote.crypto_amount),
                                          quote.rate))
        return True

    def refuse(self, staff_id: str, reason: str, now: datetime) -> CreditEntry:
        """Refused with a reason; the returned entry gives the held amount back."""
        self._require(RefundStatus.REQUESTED, "refused")
        self.refused_reason = clean_reason(reason)
        self.refused_by = staff_id
        self.status, self.decided_at = RefundStatus.REFUSED, now
        self.events.append(RefundRefused(self.account_id, self.id, self.amount_text,
                                         self.currency, self.coin, self.refused_reason))
        return self.return_entry(now)

    def cancel(self, now: datetime) -> CreditEntry:
        """The customer withdraws the request while it is pending."""
        self._require(RefundStatus.REQUESTED, "cancelled")
        self.status, self.decided_at = RefundStatus.CANCELLED, now
        self.events.append(RefundCancelled(self.account_id, self.id, self.amount_text,
                                           self.currency, self.coin))
        return self.return_entry(now)

    def mark_sent(self, txid: str, now: datetime, tx_key: str | None = None) -> None:
        """A payment to the customer's address was seen (or, for Monero, the operator
        entered the txid and tx key that prove it)."""
        self._require(RefundStatus.APPROVED, "marked sent")
        if not txid:
            raise InvalidInput("txid", "is required")
        self.status, self.txid, self.sent_at = RefundStatus.SENT, txid, now
        if tx_key is not None:
            self.tx_key = tx_key

    def unsend(self) -> None:
        """The matching payment left the chain (a reorg): approved again, waiting."""
        self._require(RefundStatus.SENT, "un-sent")
        self.status, self.txid, self.sent_at = RefundStatus.APPROVED, None, None

    def complete(self, now: datetime) -> None:
        """The payment reached the coin's depth."""
        self._require(RefundStatus.SENT, "completed")
        assert self.txid is not None
        self.status, self.completed_at = RefundStatus.COMPLETED, now
        self.events.append(RefundCompleted(self.account_id, self.id, self.amount_text,
                                           self.currency, self.coin, self.txid))
