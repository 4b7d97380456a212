"""Which lane each event is delivered in (gateway.domain.events.ordering), and how one
transaction's events are numbered so an account event never waits for a later one."""

from gateway.domain.events import DomainEvent, Ordering, in_delivery_order, ordering


def invoice(type_: str, invoice_id: str, account: str = "acc_1") -> DomainEvent:
    return DomainEvent(type_, account, {"invoice_id": invoice_id, "account_id": account})


def test_invoice_events_go_in_their_invoices_lane() -> None:
    assert ordering(invoice("invoice.created", "inv_1")) == Ordering("inv_1", None, False)
    assert ordering(invoice("invoice.payment_received", "inv_1")).urgent is False
    assert ordering(invoice("invoice.settled", "inv_1")) == Ordering("inv_1", None, True)
    assert ordering(invoice("invoice.payment_reverted", "inv_1")).urgent is True


def test_account_events_go_in_the_accounts_lane_after_the_invoice_they_name() -> None:
    activated = DomainEvent("account.activated", "acc_1",
                            {"account_id": "acc_1", "invoice_id": "inv_1"})
    assert ordering(activated) == Ordering("acc_1", "inv_1", True)
    suspended = DomainEvent("account.suspended", "acc_1", {"account_id": "acc_1"})
    assert ordering(suspended) == Ordering("acc_1", None, True)


def test_an_invoice_event_without_an_invoice_id_keeps_its_accounts_lane() -> None:
    assert ordering(DomainEvent("invoice.created", "acc_1", {"n": 1})).lane == "acc_1"


def test_a_transactions_account_events_are_numbered_after_the_invoices_they_follow() -> None:
    created = DomainEvent("account.created", "acc_1", {"account_id": "acc_1"})
    activated = DomainEvent("account.activated", "acc_1",
                            {"account_id": "acc_1", "invoice_id": "inv_1"})
    settled = invoice("invoice.settled", "inv_1")
    other = invoice("invoice.created", "inv_2")
    placed = [event for event, _ in in_delivery_order([created, activated, settled, other])]
    # The account's lane moves behind the invoices, keeping its own order.
    assert placed == [settled, other, created, activated]
    # Nothing to move when the account event names no invoice of this transaction.
    alone = [event for event, _ in in_delivery_order([activated, other])]
    assert alone == [activated, other]
