from collections.abc import Mapping
from dataclasses import dataclass, field

ACCOUNT_CREATED = "account.created"
ACCOUNT_ACTIVATED = "account.activated"
ACCOUNT_DELETION_SCHEDULED = "account.deletion_scheduled"
ACCOUNT_DELETION_CANCELLED = "account.deletion_cancelled"
ACCOUNT_DELETED = "account.deleted"
ACCOUNT_RENEWED = "account.renewed"
ACCOUNT_EXPIRING = "account.expiring"
ACCOUNT_GRACE = "account.grace"
ACCOUNT_SUSPENDED = "account.suspended"
ACCOUNT_TIME_REVOKED = "account.time_revoked"
INVOICE_CREATED = "invoice.created"
INVOICE_PAYMENT_RECEIVED = "invoice.payment_received"
INVOICE_PROCESSING = "invoice.processing"
INVOICE_SETTLED = "invoice.settled"
INVOICE_EXPIRED = "invoice.expired"
INVOICE_INVALID = "invoice.invalid"
INVOICE_PAYMENT_REVERTED = "invoice.payment_reverted"
INVOICE_PROCESSING_REVERTED = "invoice.processing_reverted"

EVENT_TYPES: tuple[str, ...] = (
    ACCOUNT_CREATED, ACCOUNT_ACTIVATED, ACCOUNT_DELETION_SCHEDULED,
    ACCOUNT_DELETION_CANCELLED, ACCOUNT_DELETED,
    ACCOUNT_RENEWED, ACCOUNT_EXPIRING, ACCOUNT_GRACE, ACCOUNT_SUSPENDED, ACCOUNT_TIME_REVOKED,
    INVOICE_CREATED, INVOICE_PAYMENT_RECEIVED, INVOICE_PROCESSING, INVOICE_SETTLED,
    INVOICE_EXPIRED, INVOICE_INVALID, INVOICE_PAYMENT_REVERTED, INVOICE_PROCESSING_REVERTED,
)


@dataclass(frozen=True)
class DomainEvent:
    """Something that happened; goes to the outbox in the transaction that caused it.

    `data` must never hold personal data (email, names): webhooks leave the building."""

    type: str
    account_id: str
    data: Mapping[str, object] = field(default_factory=dict)
