"""Which lane each event is delivered in (gateway.domain.events.ordering), and how one
transaction's events are numbered so an account event never waits for a later one."""

from gateway.domain.events import (
    AccountCreated,
    AccountSuspended,
    Ordering,
    in_delivery_order,
    ordering,
)
from tests.support.events import T0, activated
from tests.support.events import invoice_event as invoice


def test_invoice_events_go_in_their_invoices_lane() -> None:
    assert ordering(invoice("invoice.created", "inv_1")) == Ordering("inv_1", None, False)
    assert ordering(invoice("invoice.payment_received", "inv_1")).urgent is False
    assert ordering(invoice("invoice.settled", "inv_1")) == Ordering("inv_1", None, True)
    assert ordering(invoice("invoice.payment_reverted", "inv_1")).urgent is True


def test_account_events_go_in_the_accounts_lane_after_the_invoice_they_name() -> None:
    assert ordering(activated("acc_1", "inv_1")) == Ordering("acc_1", "inv_1", True)
    suspended = AccountSuspended("acc_1", "basic", T0)
    assert ordering(suspended) == Ordering("acc_1", None, True)


def test_an_invoice_event_without_an_invoice_id_keeps_its_accounts_lane() -> None:
    assert ordering(invoice("invoice.created", "")).lane == "acc_1"


def test_a_transactions_account_events_are_numbered_after_the_invoices_they_follow() -> None:
    created = AccountCreated("acc_1")
    active = activated("acc_1", "inv_1")
    settled = invoice("invoice.settled", "inv_1")
    other = invoice("invoice.created", "inv_2")
    placed = [event for event, _ in in_delivery_order([created, active, settled, other])]
    # The account's lane moves behind the invoices, keeping its own order.
    assert placed == [settled, other, created, active]
    # Nothing to move when the account event names no invoice of this transaction.
    alone = [event for event, _ in in_delivery_order([active, other])]
    assert alone == [active, other]
