"""Account credit: money a customer paid that no invoice used, kept for them in the
account's currency and minor units (docs/credit.md).

The ledger is append-only: every change is an entry, the balance is their sum, and each
entry names its cause (`cause`), unique per account, so an entry written twice (two
instances, a restart, a retried job) is written once. Pure: no I/O, the clock passed in."""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from gateway.domain.errors import InvalidInput
from gateway.domain.money import FIAT_EXPONENTS, Fiat


class CreditKind(StrEnum):
    """Why the balance moved. Stored, shown in the API, the portal and the exports: these
    spellings never change."""

    UNDERPAID = "underpaid"  # the payments of an invoice that expired without settling
    OVERPAID = "overpaid"  # what a settled invoice received beyond its amount due
    LATE = "late_payment"  # a payment after expiry that the invoice does not take
    SPENT = "spent"  # credit that paid (part of) a plan period or a renewal (negative)
    REFUND = "refund"  # credit asked back as a refund (negative, held while it is open)
    REFUND_RETURNED = "refund_returned"  # a refused or cancelled refund gives it back
    ADJUSTMENT = "adjustment"  # staff, with a typed reason (either sign)
    EXPIRED = "expired"  # credit older than the configured lifetime (negative)
    SPEND_RETURNED = "spend_returned"  # a part-paid invoice expired: its credit comes back
    REVERTED = "reverted"  # a credited payment reverted for good (negative; may overdraw)
    VOUCHER = "voucher"  # a voucher code redeemed (docs/vouchers.md)
    CASH = "cash"  # cash by mail: an envelope staff recorded with the account's token


class AdjustmentReason(StrEnum):
    """Why staff moved a balance by hand: a typed reason, never free text alone."""

    GOODWILL = "goodwill"
    CORRECTION = "correction"
    CHARGEBACK = "chargeback"
    SUPPORT = "support"


# Kinds that only ever add to the balance, and those that only ever take from it.
CREDITS = frozenset({CreditKind.UNDERPAID, CreditKind.OVERPAID, CreditKind.LATE,
                     CreditKind.REFUND_RETURNED, CreditKind.SPEND_RETURNED,
                     CreditKind.VOUCHER, CreditKind.CASH})
DEBITS = frozenset({CreditKind.SPENT, CreditKind.REFUND, CreditKind.EXPIRED,
                    CreditKind.REVERTED})
# Kinds that come from coins paid (one per output, `payment_cause`), and the kind that
# takes one back when its payment reverts for good.
FROM_PAYMENTS = frozenset({CreditKind.UNDERPAID, CreditKind.OVERPAID, CreditKind.LATE})


@dataclass(frozen=True)
class Conversion:
    """How coins became credit: the amount in base units and the rate used (fiat per
    whole coin), stored on the entry so finance can redo the sum."""

    coin: str
    txid: str
    output_index: int
    crypto_amount: int
    decimals: int
    rate: str
    rate_source: str  # "locked" (the invoice's rate) or the median's sources


@dataclass(frozen=True)
class CreditEntry:
    account_id: str
    kind: CreditKind
    amount: int  # minor units of `currency`; negative for debits
    currency: str
    cause: str  # unique per account: "payment:LTC:<txid>:<n>", "spend:<invoice id>", ...
    created_at: datetime
    invoice_id: str | None = None
    refund_id: str | None = None
    conversion: Conversion | None = None
    reason: AdjustmentReason | None = None
    note: str | None = None  # staff's words beside the typed reason
    staff_id: str | None = None  # staff_members.id (a string, like every public id)
    id: int | None = None  # set by the store

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be UTC-aware")
        if self.amount == 0:
            raise InvalidInput("amount", "a credit entry moves the balance")
        if ((self.kind in CREDITS and self.amount < 0)
                or (self.kind in DEBITS and self.amount > 0)):
            raise InvalidInput("amount", f"a {self.kind} entry cannot be {self.amount}")
        if self.kind is CreditKind.ADJUSTMENT and self.reason is None:
            raise InvalidInput("reason", "an adjustment needs a reason")


def balance(entries: list[CreditEntry]) -> int:
    return sum(e.amount for e in entries)


def signed_fiat(minor: int, currency: str) -> str:
    """Minor units as a decimal string with the currency's digits, either sign: "-3.50"."""
    text = Fiat(abs(minor), currency).as_decimal_string()
    return f"-{text}" if minor < 0 else text


def payment_cause(coin: str, txid: str, output_index: int) -> str:
    """One entry per paid output, whatever the invoice's story: a payment is credited once."""
    return f"payment:{coin}:{txid}:{output_index}"


def to_credit(amount: int, decimals: int, rate: Decimal, currency: str) -> int:
    """Coins to minor units of the account's currency, rounded down: credit never holds
    more than the coins were worth at the rate used."""
    value = Decimal(amount).scaleb(-decimals) * rate
    return int(value.scaleb(FIAT_EXPONENTS[currency]).to_integral_value(rounding=ROUND_FLOOR))


def split_price(price_minor: int, available: int) -> tuple[int, int]:
    """(paid from credit, left to invoice) for a price: credit is spent first, never
    below zero."""
    used = max(0, min(price_minor, available))
    return used, price_minor - used


class InsufficientCredit(InvalidInput):
    def __init__(self, wanted: int, available: int) -> None:
        super().__init__("amount", f"the balance is {available} minor units; "
                         f"{wanted} were asked for")
