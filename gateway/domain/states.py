"""The states the gateway stores as strings, as enums. Each value is the string stored in
its column and shown in the API and the webhooks, so these never change spelling (an
enum member compares and hashes equal to its string)."""

from enum import StrEnum


class Status(StrEnum):
    """An invoice's status: the state machine of the design document (ARCHITECTURE.md,
    "Invoice state machine"), told to users in the README's "HTTP API" section."""

    NEW = "new"
    PROCESSING = "processing"
    SETTLED = "settled"
    EXPIRED = "expired"
    INVALID = "invalid"


class InvoiceException(StrEnum):
    """An invoice's second axis: what went unusually (null when nothing did)."""

    PAID_PARTIAL = "paid_partial"
    PAID_OVER = "paid_over"
    PAID_LATE = "paid_late"
    REVERTED_AFTER_SETTLEMENT = "reverted_after_settlement"


class IdempotencyState(StrEnum):
    """An Idempotency-Key: its first request still runs, or it made its invoice."""

    RUNNING = "running"
    DONE = "done"


class AccountState(StrEnum):
    """Where an account stands in its life (its prepaid time is `BillingState`)."""

    PENDING_ACTIVATION = "pending activation"
    ACTIVE = "active"
    DELETION_SCHEDULED = "deletion scheduled"
    DELETED = "deleted"
