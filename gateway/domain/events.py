"""Domain events: one frozen dataclass per webhook event type, carrying exactly the fields
of its payload (WEBHOOKS.md, "Event types"). The webhook body, its JSON Schema (used by the
OpenAPI document's `webhooks`) and the documentation test all come from these classes, so
none can drift from the others. Standard library only; no I/O."""

import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import Field, dataclass, field, fields, is_dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Union

from gateway.domain.billing import BillingState
from gateway.domain.states import InvoiceException, Status
from gateway.domain.timestamps import rfc3339


class EventType(StrEnum):
    """The wire `type` of each event (never renamed: receivers match on it)."""

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
    ACCOUNT_CREDITED = "account.credited"
    INVOICE_CREATED = "invoice.created"
    INVOICE_PAYMENT_RECEIVED = "invoice.payment_received"
    INVOICE_PROCESSING = "invoice.processing"
    INVOICE_SETTLED = "invoice.settled"
    INVOICE_EXPIRED = "invoice.expired"
    INVOICE_INVALID = "invoice.invalid"
    INVOICE_PAYMENT_REVERTED = "invoice.payment_reverted"
    INVOICE_PROCESSING_REVERTED = "invoice.processing_reverted"
    REFUND_REQUESTED = "refund.requested"
    REFUND_APPROVED = "refund.approved"
    REFUND_REFUSED = "refund.refused"
    REFUND_CANCELLED = "refund.cancelled"
    REFUND_COMPLETED = "refund.completed"


ACCOUNT_CREATED = EventType.ACCOUNT_CREATED
ACCOUNT_ACTIVATED = EventType.ACCOUNT_ACTIVATED
ACCOUNT_DELETION_SCHEDULED = EventType.ACCOUNT_DELETION_SCHEDULED
ACCOUNT_DELETION_CANCELLED = EventType.ACCOUNT_DELETION_CANCELLED
ACCOUNT_DELETED = EventType.ACCOUNT_DELETED
ACCOUNT_RENEWED = EventType.ACCOUNT_RENEWED
ACCOUNT_EXPIRING = EventType.ACCOUNT_EXPIRING
ACCOUNT_GRACE = EventType.ACCOUNT_GRACE
ACCOUNT_SUSPENDED = EventType.ACCOUNT_SUSPENDED
ACCOUNT_TIME_REVOKED = EventType.ACCOUNT_TIME_REVOKED
ACCOUNT_CREDITED = EventType.ACCOUNT_CREDITED
INVOICE_CREATED = EventType.INVOICE_CREATED
INVOICE_PAYMENT_RECEIVED = EventType.INVOICE_PAYMENT_RECEIVED
INVOICE_PROCESSING = EventType.INVOICE_PROCESSING
INVOICE_SETTLED = EventType.INVOICE_SETTLED
INVOICE_EXPIRED = EventType.INVOICE_EXPIRED
INVOICE_INVALID = EventType.INVOICE_INVALID
INVOICE_PAYMENT_REVERTED = EventType.INVOICE_PAYMENT_REVERTED
INVOICE_PROCESSING_REVERTED = EventType.INVOICE_PROCESSING_REVERTED
REFUND_REQUESTED = EventType.REFUND_REQUESTED
REFUND_APPROVED = EventType.REFUND_APPROVED
REFUND_REFUSED = EventType.REFUND_REFUSED
REFUND_CANCELLED = EventType.REFUND_CANCELLED
REFUND_COMPLETED = EventType.REFUND_COMPLETED

EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)

# A field with this metadata is left out of the payload while it is None (rather than
# sent as null): `account.activated` names a plan only for a plan invoice.
ABSENT_WHEN_NONE: Mapping[str, object] = {"absent_when_none": True}


# -- values inside payloads -------------------------------------------------------------
@dataclass(frozen=True)
class Price:
    amount: str  # decimal string, e.g. "9.99"
    currency: str


@dataclass(frozen=True)
class Rate:
    value: str  # fiat per whole coin, decimal string
    source: str
    locked_at: datetime


@dataclass(frozen=True)
class LockedUntil:
    """A payment's lock: the first block that may include a spend of it and/or the
    moment from which it counts; the other is null."""

    height: int | None
    time: datetime | None


@dataclass(frozen=True)
class ReceivedPayment:
    txid: str
    index: int
    amount: str  # coin units, decimal string
    amount_base_units: str
    coin: str
    confirmations: int
    locked_until: LockedUntil | None
    rate: Rate


# -- the events -------------------------------------------------------------------------
@dataclass(frozen=True)
class DomainEvent:
    """Something that happened; goes to the outbox in the transaction that caused it.

    Its fields are its webhook payload (`data`), and must never hold personal data
    (email, names): webhooks leave the building. `account_id` is in every payload."""

    TYPE: ClassVar[EventType]
    account_id: str

    @property
    def type(self) -> str:
        return self.TYPE.value

    @property
    def data(self) -> dict[str, object]:
        """The payload, as JSON values."""
        return _object(self)


@dataclass(frozen=True)
class AccountCreated(DomainEvent):
    """Signup."""

    TYPE = EventType.ACCOUNT_CREATED


@dataclass(frozen=True)
class AccountActivated(DomainEvent):
    """The account's first invoice settled; again when a plan invoice settles for a
    suspended account. `plan`, `paid_until` and `reactivated` only for a plan invoice.
    `via`: "invoice", or "credit" when the period was bought from credit alone (then no
    invoice: `invoice_id` is null)."""

    TYPE = EventType.ACCOUNT_ACTIVATED
    invoice_id: str | None
    datacenter: str | None
    metadata: Mapping[str, object]  # of the invoice
    plan: str | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    paid_until: datetime | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    reactivated: bool | None = field(  # true after a suspension
        default=None, metadata=ABSENT_WHEN_NONE)
    via: str = "invoice"  # "invoice" | "credit"


@dataclass(frozen=True)
class AccountDeletionScheduled(DomainEvent):
    """The customer asked for deletion."""

    TYPE = EventType.ACCOUNT_DELETION_SCHEDULED
    deletion_due_at: datetime


@dataclass(frozen=True)
class AccountDeletionCancelled(DomainEvent):
    """The customer kept the account during the grace period."""

    TYPE = EventType.ACCOUNT_DELETION_CANCELLED


@dataclass(frozen=True)
class AccountDeleted(DomainEvent):
    """The deletion was carried out (personal data erased)."""

    TYPE = EventType.ACCOUNT_DELETED


@dataclass(frozen=True)
class AccountRenewed(DomainEvent):
    """A plan invoice settled for an active account or one in grace."""

    TYPE = EventType.ACCOUNT_RENEWED
    plan: str
    paid_until: datetime  # the new one
    invoice_id: str | None  # null when bought from credit alone
    periods: int
    period_start: datetime
    via: str = "invoice"  # "invoice" | "credit" (docs/credit.md)


@dataclass(frozen=True)
class AccountExpiring(DomainEvent):
    """The renewal invoice of the current period was created."""

    TYPE = EventType.ACCOUNT_EXPIRING
    plan: str | None
    paid_until: datetime | None
    invoice_id: str
    price: Price
    coin: str | None


@dataclass(frozen=True)
class AccountGrace(DomainEvent):
    """`paid_until` passed without a payment."""

    TYPE = EventType.ACCOUNT_GRACE
    plan: str | None
    paid_until: datetime
    suspends_at: datetime


@dataclass(frozen=True)
class AccountSuspended(DomainEvent):
    """The grace period ended without a payment, or a reverted payment took back the
    time and none paid is left."""

    TYPE = EventType.ACCOUNT_SUSPENDED
    plan: str | None
    paid_until: datetime


@dataclass(frozen=True)
class AccountTimeRevoked(DomainEvent):
    """A payment of a settled plan invoice was reverted: the periods the remaining
    payments no longer cover are taken back."""

    TYPE = EventType.ACCOUNT_TIME_REVOKED
    plan: str | None
    paid_until: datetime  # the new, earlier one
    invoice_id: str
    periods: int  # taken back
    billing_state: BillingState | None


@dataclass(frozen=True)
class AccountCredited(DomainEvent):
    """The account's credit grew (docs/credit.md): coins no invoice used (underpaid,
    overpaid, late), or credit given back (a spend whose invoice expired, a refund)."""

    TYPE = EventType.ACCOUNT_CREDITED
    kind: str  # the entry's kind: underpaid | overpaid | late_payment | spend_returned ...
    amount: str  # decimal string in `currency`, e.g. "3.50"
    currency: str
    balance: str  # the balance after it, decimal string
    invoice_id: str | None
    txid: str | None
    # Where money from outside the chain came in: "voucher" (docs/vouchers.md); absent
    # for everything else, which `kind` describes (so earlier bodies stay as they were).
    via: str | None = field(default=None, metadata=ABSENT_WHEN_NONE)


@dataclass(frozen=True)
class InvoiceEvent(DomainEvent):
    """The invoice summary every `invoice.*` event carries."""

    invoice_id: str
    status: Status
    exception: InvoiceException | None
    coin: str
    amount_due: str  # coin units, decimal string
    amount_due_base_units: str
    amount_paid: str
    price: Price
    rate: Rate
    metadata: Mapping[str, object]


@dataclass(frozen=True)
class InvoiceCreated(InvoiceEvent):
    """Invoice created."""

    TYPE = EventType.INVOICE_CREATED


@dataclass(frozen=True)
class InvoicePaymentReceived(InvoiceEvent):
    """Each new payment to the invoice's address."""

    TYPE = EventType.INVOICE_PAYMENT_RECEIVED
    payment: ReceivedPayment


@dataclass(frozen=True)
class InvoiceProcessing(InvoiceEvent):
    """Full amount seen, not yet confirmed enough."""

    TYPE = EventType.INVOICE_PROCESSING


@dataclass(frozen=True)
class InvoiceSettled(InvoiceEvent):
    """Confirmed amount reached at the required depth."""

    TYPE = EventType.INVOICE_SETTLED


@dataclass(frozen=True)
class InvoiceExpired(InvoiceEvent):
    """Expiry passed without full payment."""

    TYPE = EventType.INVOICE_EXPIRED


@dataclass(frozen=True)
class InvoiceInvalid(InvoiceEvent):
    """Monitoring window ended without enough confirmations."""

    TYPE = EventType.INVOICE_INVALID


@dataclass(frozen=True)
class InvoicePaymentReverted(InvoiceEvent):
    """A settled invoice's payment left the chain."""

    TYPE = EventType.INVOICE_PAYMENT_REVERTED


@dataclass(frozen=True)
class InvoiceProcessingReverted(InvoiceEvent):
    """A `processing` invoice is no longer paid in full (its status is `new` again)."""

    TYPE = EventType.INVOICE_PROCESSING_REVERTED


@dataclass(frozen=True)
class RefundEvent(DomainEvent):
    """The refund summary every `refund.*` event carries; never the customer's address."""

    refund_id: str
    amount: str  # decimal string, in `currency`
    currency: str
    coin: str


@dataclass(frozen=True)
class RefundRequested(RefundEvent):
    """The customer asked for credit back; the amount is held from the balance."""

    TYPE = EventType.REFUND_REQUESTED
    approvals_needed: int


@dataclass(frozen=True)
class RefundApproved(RefundEvent):
    """The last approval needed: the coin amount is fixed at the rate of that moment and
    the operator's wallet has what it signs and sends."""

    TYPE = EventType.REFUND_APPROVED
    amount_base_units: str
    rate: str  # fiat per whole coin


@dataclass(frozen=True)
class RefundRefused(RefundEvent):
    """Finance refused the refund, with a reason; the held amount is credited back."""

    TYPE = EventType.REFUND_REFUSED
    reason: str


@dataclass(frozen=True)
class RefundCancelled(RefundEvent):
    """The customer withdrew the request while it was pending; the amount is credited
    back."""

    TYPE = EventType.REFUND_CANCELLED


@dataclass(frozen=True)
class RefundCompleted(RefundEvent):
    """The refund's payment reached the coin's depth."""

    TYPE = EventType.REFUND_COMPLETED
    txid: str


EVENT_CLASSES: Mapping[EventType, type[DomainEvent]] = {
    cls.TYPE: cls for cls in (
        AccountCreated, AccountActivated, AccountDeletionScheduled, AccountDeletionCancelled,
        AccountDeleted, AccountRenewed, AccountExpiring, AccountGrace, AccountSuspended,
        AccountTimeRevoked, AccountCredited, InvoiceCreated, InvoicePaymentReceived,
        InvoiceProcessing,
        InvoiceSettled, InvoiceExpired, InvoiceInvalid, InvoicePaymentReverted,
        InvoiceProcessingReverted, RefundRequested, RefundApproved, RefundRefused,
        RefundCancelled, RefundCompleted,
    )
}


# -- the wire form ----------------------------------------------------------------------
def _value(value: object) -> object:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, StrEnum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return _object(value)
    if isinstance(value, Mapping):
        return dict(value)  # metadata: as given
    return value


def _object(obj: object) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if value is None and f.metadata.get("absent_when_none"):
            continue
        out[f.name] = _value(value)
    return out


def webhook_body(event: DomainEvent, now: datetime) -> str:
    """The body every delivery of `event` carries (signed over these exact bytes)."""
    return json.dumps(
        {"type": event.type, "timestamp": rfc3339(now), "data": event.data},
        separators=(",", ":"),
        sort_keys=True,
    )


# -- the schema -------------------------------------------------------------------------
TIME_SCHEMA: Mapping[str, object] = {"type": "string", "format": "date-time"}
_SCALARS: Mapping[object, Mapping[str, object]] = {
    str: {"type": "string"}, int: {"type": "integer"}, bool: {"type": "boolean"},
    datetime: TIME_SCHEMA,
}


def _type_schema(hint: Any) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        assert len(args) == 1, hint
        return {"anyOf": [_type_schema(args[0]), {"type": "null"}]}
    if origin is not None and issubclass(origin, Mapping):
        return {"type": "object"}
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return {"type": "string", "enum": [m.value for m in hint]}
    if isinstance(hint, type) and is_dataclass(hint):
        return object_schema(hint)
    return dict(_SCALARS[hint])


def _field_schema(f: Field[Any], hint: Any) -> tuple[dict[str, Any], bool]:
    """A field's schema, and whether the payload always has it."""
    if f.metadata.get("absent_when_none"):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _type_schema(args[0]), False
    return _type_schema(hint), True


def object_schema(cls: type) -> dict[str, Any]:
    """The JSON Schema of a payload dataclass (every field, nothing else)."""
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in fields(cls):
        properties[f.name], always = _field_schema(f, hints[f.name])
        if always:
            required.append(f.name)
    return {"type": "object", "additionalProperties": False, "required": required,
            "properties": properties}


def event_schema(cls: type[DomainEvent]) -> dict[str, Any]:
    """The JSON Schema of the whole webhook body of one event type."""
    return {
        "title": cls.__name__,
        "description": " ".join((cls.__doc__ or "").split()),
        "type": "object", "additionalProperties": False,
        "required": ["data", "timestamp", "type"],
        "properties": {
            "type": {"const": cls.TYPE.value},
            "timestamp": dict(TIME_SCHEMA),
            "data": object_schema(cls),
        },
    }


def field_paths(cls: type, prefix: str = "") -> set[str]:
    """Every field of a payload, nested ones as `parent.child`."""
    hints = typing.get_type_hints(cls)
    paths: set[str] = set()
    for f in fields(cls):
        paths.add(prefix + f.name)
        inner = [a for a in (typing.get_args(hints[f.name]) or (hints[f.name],))
                 if isinstance(a, type) and is_dataclass(a)]
        for sub in inner:
            paths |= field_paths(sub, f"{prefix}{f.name}.")
    return paths


# -- delivery order ---------------------------------------------------------------------
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
    invoice = getattr(event, "invoice_id", None)
    invoice_id = invoice if isinstance(invoice, str) and invoice else None
    urgent = event.type in URGENT_TYPES
    if isinstance(event, InvoiceEvent) and invoice_id is not None:
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
