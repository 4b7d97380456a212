from collections.abc import Mapping, Sequence
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


# Delivered before every other due event (to each endpoint): what a provisioning system
# acts on. Events of invoices are many (one `invoice.created` per checkout); these few
# must not queue behind them.
URGENT_TYPES: frozenset[str] = frozenset({
    INVOICE_SETTLED, INVOICE_PAYMENT_REVERTED,
    *(t for t in EVENT_TYPES if t.startswith("account.")),
})


@dataclass(frozen=True)
class Ordering:
    """Where an event stands in delivery order (WEBHOOKS.md, "Order"). `lane`: the
    subject whose events reach each endpoint one at a time, in commit order (an invoice
    for `invoice.*`, the account for `account.*`). `after`: another lane whose earlier
    events must have been delivered first (the invoice an account event names, e.g. the
    one whose settlement activated it). `urgent`: delivered before other due events;
    the earlier events of its lanes are then hurried along with it."""

    lane: str
    after: str | None
    urgent: bool


def ordering(event: DomainEvent) -> Ordering:
    invoice = event.data.get("invoice_id")
    invoice_id = invoice if isinstance(invoice, str) and invoice else None
    urgent = event.type in URGENT_TYPES
    if event.type.startswith("invoice.") and invoice_id is not None:
        return Ordering(invoice_id, None, urgent)
    return Ordering(event.account_id, invoice_id, urgent)


def in_delivery_order(events: Sequence[DomainEvent]) -> list[tuple[DomainEvent, Ordering]]:
    """One transaction's events as the outbox numbers them: as recorded, except that a
    lane with an event following another lane of this transaction (an activation and
    the settlement that caused it) comes after everything else, in its own order. So an
    event's `after` lane never holds a later-numbered event of the same transaction."""
    placed = [(event, ordering(event)) for event in events]
    lanes = {order.lane for _, order in placed}
    last = {order.lane for _, order in placed
            if order.after is not None and order.after != order.lane and order.after in lanes}
    return ([p for p in placed if p[1].lane not in last]
            + [p for p in placed if p[1].lane in last])
