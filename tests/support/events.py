"""Typed domain events for tests that need one of a given type and lane, whatever its
other fields say."""

from datetime import UTC, datetime
from typing import Any

from gateway.domain import events as ev
from gateway.domain.invoices import Status

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RATE = ev.Rate("80.00", "fixed", T0)


def invoice_event(type_: str, invoice_id: str, account: str = "acc_1",
                  metadata: dict[str, object] | None = None) -> ev.InvoiceEvent:
    """An `invoice.*` event of `invoice_id` (its summary made up)."""
    kind = ev.EVENT_CLASSES[ev.EventType(type_)]
    assert issubclass(kind, ev.InvoiceEvent), type_
    fields: dict[str, Any] = {
        "account_id": account, "invoice_id": invoice_id, "status": Status.NEW,
        "exception": None, "coin": "LTC", "amount_due": "0.01",
        "amount_due_base_units": "1000000", "amount_paid": "0",
        "price": ev.Price("9.99", "EUR"), "rate": RATE, "metadata": metadata or {},
    }
    if kind is ev.InvoicePaymentReceived:
        fields["payment"] = ev.ReceivedPayment("ab" * 32, 0, "0.01", "1000000", "LTC", 0,
                                               None, RATE)
    return kind(**fields)


def activated(account: str, invoice_id: str) -> ev.AccountActivated:
    return ev.AccountActivated(account, invoice_id, None, {})
