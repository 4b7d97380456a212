"""Response documents as models, for the OpenAPI description (the views build them)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProblemError(Out):
    field: str
    message: str


class Problem(Out):
    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemError] | None = None


class Account(Out):
    id: str
    email: str
    display_name: str | None
    company: str | None
    datacenter: str | None
    currency: str | None
    created_at: str
    activated_at: str | None
    policy_version_accepted: str | None
    deletion_due_at: str | None
    plan: str | None = Field(description="the plan renewed (prepaid time)")
    paid_until: str | None = Field(description="end of the time paid for")
    billing_state: Literal["active", "grace", "suspended"] | None
    renewal_coin: str | None = Field(description="the coin renewal invoices ask for")
    renewal_reminders: bool
    next_invoice: "NextInvoice | None" = Field(
        description="the renewal invoice of the current period, once created")
    next_invoice_at: str | None = Field(
        description="when the renewal invoice of the current period is (was) created")
    credit: "Credit | None" = Field(
        None, description="the account's credit (docs/credit.md); null without a currency")


class Credit(Out):
    balance: str = Field(description="decimal string in `currency`, e.g. \"3.50\"")
    balance_minor: int
    currency: str


class CreditPayment(Out):
    coin: str
    txid: str
    index: int
    amount: str
    amount_base_units: str
    rate: str = Field(description="fiat per whole coin used for the conversion")
    rate_source: str = Field(description="\"locked\" (the invoice's rate) or the median's")


class CreditEntry(Out):
    id: int
    kind: Literal["underpaid", "overpaid", "late_payment", "spent", "refund",
                  "refund_returned", "adjustment", "expired", "spend_returned", "reverted",
                  "voucher", "cash"]
    amount: str
    amount_minor: int
    currency: str
    created_at: str
    invoice_id: str | None
    refund_id: str | None
    payment: CreditPayment | None
    reason: str | None


class CreditPage(Out):
    credit: Credit | None
    data: list[CreditEntry]
    next_cursor: int | None = Field(None, description="pass as `before` for the next page")


class NextInvoice(Out):
    invoice_id: str
    status: Literal["new", "processing", "settled", "expired", "invalid"]
    created_at: str


class DeletionScheduled(Out):
    deletion_due_at: str
    detail: str


class OptionalProcessing(Out):
    objected: bool = Field(description="true: no optional notices are mailed to you")
    since: str | None = Field(None, description="when you objected (RFC 3339)")


class LedgerPayment(Out):
    time: str
    invoice_id: str
    account_id: str
    coin: str
    txid: str
    output_index: int
    amount: str
    amount_base_units: str
    fiat_value: str
    fiat_currency: str
    confirmations: int
    status: Literal["pending", "confirmed", "reverted"]
    asset: str  # a token's contract address; empty for a chain's native coin
    plan: str  # a settled plan invoice's plan; empty otherwise
    period_start: str  # the account's time it paid for: [period_start, period_end)
    period_end: str


class PaymentPage(Out):
    data: list[LedgerPayment]
    next_cursor: str | None


class PaymentList(Out):
    data: list[LedgerPayment]


class Session(Out):
    token: str
    expires_at: str


class Money(Out):
    amount: str
    currency: str


class Rate(Out):
    value: str
    source: str
    locked_at: str


class LockedUntil(Out):
    height: int | None = Field(description="the first block that may include a spend of it "
                               "(the chain's tip must reach height - 1)")
    time: str | None = Field(description="the moment (RFC 3339) from which it counts")


class Payment(Out):
    txid: str
    index: int
    amount: str
    amount_base_units: str
    confirmations: int
    status: Literal["pending", "confirmed", "reverted"]
    seen_at: str
    locked_until: LockedUntil | None = Field(
        description="the payment's lock while it holds (Monero's unlock_time in the "
        "future): received, but it does not count towards settlement, however many "
        "confirmations it has, until then; null without a lock or once it has passed")


class Invoice(Out):
    id: str
    account_id: str
    status: Literal["new", "processing", "settled", "expired", "invalid"]
    exception: Literal["paid_partial", "paid_over", "paid_late",
                       "reverted_after_settlement"] | None
    price: Money
    coin: str
    amount_due: str
    amount_due_base_units: str
    amount_paid: str
    amount_paid_base_units: str
    rate: Rate
    address: str
    payment_uri: str
    confirmations_required: int
    expires_at: str
    monitoring_until: str
    created_at: str
    settled_at: str | None
    payments: list[Payment]
    metadata: dict[str, Any]


class InvoicePage(Out):
    data: list[Invoice]
    next_cursor: str | None = None


class Endpoint(Out):
    id: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    created_at: str
    secret: str | None = Field(None, description="only when created")


class EndpointList(Out):
    data: list[Endpoint]


class Rotated(Out):
    secret: str
    previous_secret_expires_at: str


ERROR_CLASS = ("what went wrong, as a class (timeout, connection_refused, target_refused, "
               "dns_error, tls_error, redirect, response_too_large, ...; see WEBHOOKS.md), "
               "never the error text")


class Attempt(Out):
    at: str
    status_code: int | None
    latency_ms: int
    error: str | None = Field(description=ERROR_CLASS)


class Delivery(Out):
    id: str
    endpoint_id: str
    status: Literal["pending", "succeeded", "failed", "disabled"]
    attempts: int
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None = Field(description=ERROR_CLASS)
    log: list[Attempt]


class Event(Out):
    id: str
    type: str
    created_at: str
    payload: dict[str, Any]
    deliveries: list[Delivery] | None = None


class EventPage(Out):
    data: list[Event]
    next_cursor: str | None = None


class Queued(Out):
    queued: int


class TotpEnrolment(Out):
    secret: str
    otpauth_uri: str
    qr_svg: str


class RecoveryCodes(Out):
    recovery_codes: list[str]


class Accepted(Out):
    status: str
    detail: str


class Health(Out):
    status: str


class RefundApproval(Out):
    at: str


class Refund(Out):
    id: str
    status: Literal["requested", "approved", "sent", "completed", "refused", "cancelled"]
    amount: str = Field(description="in `currency`, a decimal string")
    currency: str
    coin: str
    address: str | None = Field(description="yours; null once retention erased it")
    approvals_needed: int
    approvals: list[RefundApproval]
    amount_base_units: str | None = Field(description="fixed by the last approval")
    refusal_reason: str | None
    txid: str | None
    requested_at: str
    decided_at: str | None
    completed_at: str | None


class RefundList(Out):
    data: list[Refund]


class VoucherRedeemed(Out):
    kind: Literal["voucher"]
    amount: str = Field(description="credited, a decimal string in `currency`")
    amount_minor: int
    currency: str
    credit: Credit = Field(description="the balance in `currency` after it (and after any "
                                       "plan periods it bought)")
    plan: str | None = Field(description="the plan a plan voucher buys")
    periods_bought: int = Field(description="plan periods bought from the credit at once")
    paid_until: str | None
    billing_state: Literal["active", "grace", "suspended"] | None


class CashToken(Out):
    id: str
    token: str = Field(description="write it on the slip in the envelope; shown only now "
                                   "(stored as a keyed hash), three groups of four")
    created_at: str
    expires_at: str = Field(description="an envelope with it is refused after this")
    replaced: bool = Field(description="an open token you had was replaced and no longer "
                                       "works")
    postal_address: str = Field(description="where to send the envelope")
    instructions: str | None
