"""The crediting rule (gateway/domain/crediting.py, docs/credit.md) with an injected
clock: which outputs of an invoice become credit, of which kind, at which rate, and
when; and the ledger's entry rules (gateway/domain/credit.py)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gateway.domain.credit import (
    CreditEntry,
    CreditKind,
    InsufficientCredit,
    payment_cause,
    signed_fiat,
    split_price,
    to_credit,
)
from gateway.domain.crediting import (
    CreditRules,
    can_still_settle,
    lost,
    owed,
    used_by_settlement,
)
from gateway.domain.errors import InvalidInput
from gateway.domain.invoices import Invoice, InvoiceTerms, LockedRate, ObservedPayment, Status
from gateway.domain.money import Fiat
from gateway.services.credit import expiry

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EXPIRES = T0 + timedelta(minutes=15)
MONITOR = T0 + timedelta(hours=24)
DUE = 10_000_000  # 8.00 EUR at 80 EUR per LTC


def invoice(late: bool = False) -> Invoice:
    return Invoice("inv_1", "acc_1", "LTC", Fiat(800, "EUR"), LockedRate("80", "kraken", T0),
                   InvoiceTerms(DUE, 8, 2, EXPIRES, MONITOR, accept_late_payments=late), T0)


def pay(amount: int, minute: float, conf: int = 2, txid: str = "a", index: int = 0,
        reverted: bool = False, locked: bool = False) -> ObservedPayment:
    return ObservedPayment(txid, index, amount, conf, T0 + timedelta(minutes=minute),
                           reverted, locked=locked)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def status(inv: Invoice) -> Status:
    return inv.status


def run(inv: Invoice, payments: list[ObservedPayment], now: datetime) -> Invoice:
    inv.observe(payments, now, timedelta(0))
    return inv


def test_an_underpaid_invoice_is_credited_when_it_expires_at_the_locked_rate() -> None:
    payments = [pay(4_000_000, 1), pay(1_000_000, 5, txid="b")]
    inv = run(invoice(), payments, at(10))
    assert status(inv) is Status.NEW and owed(inv, payments, at(10)) == []  # still open
    run(inv, payments, at(16))
    assert status(inv) is Status.EXPIRED
    items = owed(inv, payments, at(16), tolerance=timedelta(0))
    assert [(o.kind, o.cause, o.crypto_amount, o.at_locked_rate) for o in items] == [
        (CreditKind.UNDERPAID, payment_cause("LTC", "a", 0), 4_000_000, True),
        (CreditKind.UNDERPAID, payment_cause("LTC", "b", 0), 1_000_000, True)]
    assert to_credit(4_000_000, 8, Decimal("80"), "EUR") == 320


def test_an_output_waits_for_its_depth_and_its_lock() -> None:
    payments = [pay(4_000_000, 1, conf=1), pay(1_000_000, 2, txid="b", locked=True)]
    inv = run(invoice(), payments, at(16))
    assert status(inv) is Status.EXPIRED
    assert owed(inv, payments, at(16)) == []
    deeper = [pay(4_000_000, 1, conf=2), pay(1_000_000, 2, txid="b", locked=True)]
    assert [o.txid for o in owed(inv, deeper, at(30))] == ["a"]


def test_a_payment_after_expiry_is_late_at_the_median_rate() -> None:
    payments = [pay(3_000_000, 20)]
    inv = run(invoice(), [], at(16))
    run(inv, payments, at(21))
    [item] = owed(inv, payments, at(30), tolerance=timedelta(0))
    assert item.kind is CreditKind.LATE and not item.at_locked_rate


def test_with_late_payments_accepted_partial_amounts_wait_for_the_end_of_monitoring() -> None:
    payments = [pay(3_000_000, 1)]
    inv = run(invoice(late=True), payments, at(16))
    assert status(inv) is Status.EXPIRED and can_still_settle(inv, at(16))
    assert owed(inv, payments, at(16)) == []
    after = MONITOR + timedelta(seconds=1)
    assert not can_still_settle(inv, after)
    assert [o.kind for o in owed(inv, payments, after)] == [CreditKind.UNDERPAID]


def test_a_settled_invoice_credits_its_excess_once_and_later_outputs_as_late() -> None:
    first = [pay(12_000_000, 1)]
    inv = run(invoice(), first, at(2))
    assert status(inv) is Status.SETTLED
    later = [*first, pay(500_000, 5, txid="c")]
    items = owed(inv, later, at(6), tolerance=timedelta(0))
    assert [(o.kind, o.cause, o.crypto_amount, o.at_locked_rate) for o in items] == [
        (CreditKind.OVERPAID, "overpaid:inv_1", 2_000_000, True),
        (CreditKind.LATE, payment_cause("LTC", "c", 0), 500_000, True)]  # before expiry


def test_whole_periods_win_over_credit() -> None:
    payments = [pay(25_000_000, 1)]
    inv = run(invoice(), payments, at(2))
    [item] = owed(inv, payments, at(2), periods_bought=2)
    assert item.crypto_amount == 5_000_000


def test_an_excess_waits_until_every_payment_before_settlement_is_final() -> None:
    payments = [pay(10_000_000, 1), pay(2_000_000, 1.5, txid="b", conf=0)]
    inv = run(invoice(), payments, at(2))
    assert status(inv) is Status.SETTLED
    assert owed(inv, payments, at(2)) == []
    confirmed = [pay(10_000_000, 1), pay(2_000_000, 1.5, txid="b")]
    assert [o.crypto_amount for o in owed(inv, confirmed, at(3))] == [2_000_000]


def test_an_invalid_invoice_credits_its_outputs_when_they_reach_depth() -> None:
    payments = [pay(DUE, 1, conf=0)]
    inv = run(invoice(), payments, at(2))
    run(inv, payments, MONITOR + timedelta(minutes=1))
    assert status(inv) is Status.INVALID
    assert owed(inv, payments, MONITOR + timedelta(minutes=1)) == []
    confirmed = [pay(DUE, 1, conf=5)]
    assert [o.kind for o in owed(inv, confirmed, MONITOR + timedelta(hours=1))] == [
        CreditKind.UNDERPAID]


@pytest.mark.parametrize(("rules", "kinds"), [
    (CreditRules(underpaid=False), {CreditKind.OVERPAID, CreditKind.LATE}),
    (CreditRules(overpaid=False), {CreditKind.LATE}),
    (CreditRules(late=False), {CreditKind.OVERPAID}),
])
def test_each_kind_can_be_turned_off(rules: CreditRules, kinds: set[CreditKind]) -> None:
    payments = [pay(12_000_000, 1), pay(500_000, 30, txid="c")]
    inv = run(invoice(), payments[:1], at(2))
    assert {o.kind for o in owed(inv, payments, at(40), rules)} == kinds


def test_a_reverted_payment_names_what_it_was_credited_as() -> None:
    payments = [pay(12_000_000, 1)]
    inv = run(invoice(), payments, at(2))
    gone = [pay(12_000_000, 1, reverted=True)]
    assert lost(inv, gone) == [payment_cause("LTC", "a", 0), "overpaid:inv_1"]
    assert owed(inv, gone, at(3)) == []


def test_outputs_that_settled_an_invoice_after_all_are_named() -> None:
    payments = [pay(4_000_000, 1), pay(6_000_000, 1.5, txid="b")]
    inv = run(invoice(), payments[:1], at(16))
    assert used_by_settlement(inv, payments) == []  # expired: nothing used
    inv = run(invoice(), payments, at(2))
    assert status(inv) is Status.SETTLED
    after = [*payments, pay(1_000, 5, txid="c")]  # after settlement: late, not used
    assert used_by_settlement(inv, after) == [payment_cause("LTC", "a", 0),
                                              payment_cause("LTC", "b", 0)]


def test_entries_keep_their_sign_and_spending_never_goes_below_zero() -> None:
    with pytest.raises(InvalidInput):
        CreditEntry("acc_1", CreditKind.SPENT, 5, "EUR", "spend:x", T0)
    with pytest.raises(InvalidInput):
        CreditEntry("acc_1", CreditKind.REVERTED, 5, "EUR", "revert:x", T0)
    with pytest.raises(InvalidInput):
        CreditEntry("acc_1", CreditKind.SPEND_RETURNED, -5, "EUR", "unspend:x", T0)
    assert split_price(800, 300) == (300, 500)
    assert split_price(800, 1000) == (800, 0)
    assert split_price(800, -50) == (0, 800)  # a correction overdrew it: nothing to spend
    assert signed_fiat(-350, "EUR") == "-3.50" and signed_fiat(5, "EUR") == "0.05"
    assert "300" in str(InsufficientCredit(500, 300))


def entry(amount: int, day: int, n: int) -> CreditEntry:
    kind = CreditKind.LATE if amount > 0 else CreditKind.SPENT
    return CreditEntry("acc_1", kind, amount, "EUR", f"c{n}", T0 + timedelta(days=day),
                       id=n)


def test_expiry_takes_the_oldest_unspent_credit_once() -> None:
    entries = [entry(500, 0, 1), entry(300, 10, 2), entry(-200, 11, 3)]
    cutoff = T0 + timedelta(days=5)
    due = expiry(entries, cutoff, T0 + timedelta(days=35))
    assert due is not None
    assert (due.kind, due.amount, due.cause) == (CreditKind.EXPIRED, -300, "expire:1")
    # Written: nothing more is due until newer credit ages.
    assert expiry([*entries, replace(due, id=4)], cutoff, T0 + timedelta(days=36)) is None
    assert expiry(entries, T0, T0 + timedelta(days=1)) is None
    spent_all = [entry(500, 0, 1), entry(-500, 1, 2)]
    assert expiry(spent_all, cutoff, T0 + timedelta(days=40)) is None
