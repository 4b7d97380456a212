from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain import events as ev
from gateway.domain.invoices import (
    Invoice,
    InvoiceException,
    InvoiceTerms,
    LockedRate,
    ObservedPayment,
    Status,
)
from gateway.domain.money import Fiat

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DUE = 1_000_000


def make(
    tolerance_bp: int = 0, accept_late: bool = False, confirmations: int = 2
) -> Invoice:
    return Invoice(
        id="inv_1",
        account_id="acc_1",
        coin="LTC",
        price=Fiat(999, "EUR"),
        rate=LockedRate("80", "fixed", T0),
        terms=InvoiceTerms(
            amount_due=DUE,
            decimals=8,
            confirmations_required=confirmations,
            expires_at=T0 + timedelta(minutes=15),
            monitoring_until=T0 + timedelta(hours=24),
            tolerance_basis_points=tolerance_bp,
            accept_late_payments=accept_late,
        ),
        created_at=T0,
    )


def pay(amount: int, conf: int = 0, minute: float = 1, txid: str = "a", reverted: bool = False
        ) -> ObservedPayment:
    return ObservedPayment(txid, 0, amount, conf, T0 + timedelta(minutes=minute), reverted)


def types(inv: Invoice) -> list[str]:
    return [e.type for e in inv.events]


def test_unconfirmed_full_payment_is_processing_then_settles_at_depth() -> None:
    inv = make()
    inv.observe([pay(DUE, 0)], T0 + timedelta(minutes=2))
    assert inv.status is Status.PROCESSING and types(inv) == [ev.INVOICE_PROCESSING]
    inv.observe([pay(DUE, 1)], T0 + timedelta(minutes=3))
    assert inv.status is Status.PROCESSING and len(inv.events) == 1
    inv.observe([pay(DUE, 2)], T0 + timedelta(minutes=4))
    assert inv.status is Status.SETTLED
    assert types(inv) == [ev.INVOICE_PROCESSING, ev.INVOICE_SETTLED]
    assert inv.settled_at == T0 + timedelta(minutes=4)


def test_payment_first_seen_deep_enough_settles_directly() -> None:
    inv = make()
    inv.observe([pay(DUE, 5)], T0 + timedelta(minutes=2))
    assert inv.status is Status.SETTLED and types(inv) == [ev.INVOICE_SETTLED]


def test_two_payments_together_settle() -> None:
    inv = make()
    inv.observe([pay(DUE // 2, 2, txid="a")], T0 + timedelta(minutes=2))
    assert (inv.status, inv.exception) == (Status.NEW, InvoiceException.PAID_PARTIAL)
    inv.observe(
        [pay(DUE // 2, 2, txid="a"), pay(DUE - DUE // 2, 2, 3, txid="b")], T0 + timedelta(minutes=4)
    )
    assert (inv.status, inv.exception) == (Status.SETTLED, None)


def test_partial_payment_expires_as_paid_partial() -> None:
    inv = make()
    inv.observe([pay(DUE - 1, 2)], T0 + timedelta(minutes=2))
    assert (inv.status, inv.exception) == (Status.NEW, InvoiceException.PAID_PARTIAL)
    inv.observe([pay(DUE - 1, 2)], T0 + timedelta(minutes=15))
    assert (inv.status, inv.exception) == (Status.EXPIRED, InvoiceException.PAID_PARTIAL)
    assert types(inv) == [ev.INVOICE_EXPIRED]


def test_unpaid_invoice_expires_once() -> None:
    inv = make()
    inv.observe([], T0 + timedelta(minutes=14, seconds=59))
    assert inv.status is Status.NEW
    inv.observe([], T0 + timedelta(minutes=15))
    inv.observe([], T0 + timedelta(minutes=16))
    assert inv.status is Status.EXPIRED and types(inv) == [ev.INVOICE_EXPIRED]


def test_overpayment_settles_paid_over() -> None:
    inv = make()
    inv.observe([pay(DUE + 1, 2)], T0 + timedelta(minutes=2))
    assert (inv.status, inv.exception) == (Status.SETTLED, InvoiceException.PAID_OVER)


def test_tolerance_accepts_slight_underpayment() -> None:
    inv = make(tolerance_bp=100)  # 1 %
    inv.observe([pay(DUE - DUE // 100, 2)], T0 + timedelta(minutes=2))
    assert inv.status is Status.SETTLED
    strict = make(tolerance_bp=100)
    strict.observe([pay(DUE - DUE // 100 - 1, 2)], T0 + timedelta(minutes=2))
    assert strict.status is Status.NEW


def test_late_payment_is_flagged_and_settles_only_when_accepted() -> None:
    for accept, final in ((False, Status.EXPIRED), (True, Status.SETTLED)):
        inv = make(accept_late=accept)
        inv.observe([], T0 + timedelta(minutes=15))
        inv.observe([pay(DUE, 0, minute=20)], T0 + timedelta(minutes=20))
        assert (inv.status, inv.exception) == (Status.EXPIRED, InvoiceException.PAID_LATE)
        inv.observe([pay(DUE, 2, minute=20)], T0 + timedelta(minutes=30))
        assert (inv.status, inv.exception) == (final, InvoiceException.PAID_LATE)


def test_processing_reverts_to_new_then_expires_when_payment_vanishes() -> None:
    inv = make()
    inv.observe([pay(DUE, 0)], T0 + timedelta(minutes=2))
    inv.observe([pay(DUE, 0, reverted=True)], T0 + timedelta(minutes=3))
    assert (inv.status, inv.exception) == (Status.NEW, None)
    inv.observe([pay(DUE, 0, reverted=True)], T0 + timedelta(minutes=16))
    assert inv.status is Status.EXPIRED


def test_processing_past_monitoring_window_is_invalid() -> None:
    inv = make()
    inv.observe([pay(DUE, 0)], T0 + timedelta(minutes=2))
    inv.observe([pay(DUE, 1)], T0 + timedelta(hours=24))
    assert inv.status is Status.INVALID
    assert types(inv) == [ev.INVOICE_PROCESSING, ev.INVOICE_INVALID]


def test_reorg_after_settlement_flags_reverted_once() -> None:
    inv = make()
    inv.observe([pay(DUE, 2)], T0 + timedelta(minutes=2))
    inv.observe([pay(DUE, 0)], T0 + timedelta(minutes=3))
    inv.observe([pay(DUE, 0, reverted=True)], T0 + timedelta(minutes=4))
    assert (inv.status, inv.exception) == (
        Status.SETTLED, InvoiceException.REVERTED_AFTER_SETTLEMENT)
    assert types(inv) == [ev.INVOICE_SETTLED, ev.INVOICE_PAYMENT_REVERTED]


def test_events_carry_no_personal_data_and_the_locked_rate() -> None:
    inv = make()
    inv.payment_received(pay(DUE, 0))
    data = inv.events[0].data
    assert data["payment"]["txid"] == "a"  # type: ignore[index]
    assert data["payment"]["rate"]["value"] == "80"  # type: ignore[index]
    assert "email" not in repr(inv.events)


# -- property: whatever happens, settlement needs the confirmed amount at depth ------------
step = st.one_of(
    st.tuples(st.just("pay"), st.integers(1, DUE)),
    st.tuples(st.just("confirm"), st.integers(0, 4)),
    st.tuples(st.just("revert"), st.integers(0, 5)),
    st.tuples(st.just("clock"), st.integers(1, 600)),
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(step, max_size=30), tolerance=st.sampled_from([0, 50, 500]))
def test_settles_only_when_confirmed_amount_reaches_threshold(
    steps: list[tuple[str, int]], tolerance: int
) -> None:
    inv = make(tolerance_bp=tolerance, confirmations=3)
    now = T0
    payments: list[ObservedPayment] = []
    seen_transitions: list[tuple[Status, Status]] = []
    for kind, value in steps:
        if kind == "pay":
            payments.append(ObservedPayment(f"t{len(payments)}", 0, value, 0, now))
        elif kind == "confirm" and payments:
            p = payments[value % len(payments)]
            payments[value % len(payments)] = ObservedPayment(
                p.txid, p.index, p.amount, p.confirmations + 1, p.seen_at, p.reverted)
        elif kind == "revert" and payments:
            p = payments[value % len(payments)]
            payments[value % len(payments)] = ObservedPayment(
                p.txid, p.index, p.amount, 0, p.seen_at, True)
        elif kind == "clock":
            now += timedelta(minutes=value)
        before = inv.status
        inv.observe(payments, now)
        if inv.status is not before:
            seen_transitions.append((before, inv.status))
            if inv.status is Status.SETTLED:
                confirmed = sum(p.amount for p in payments
                                if not p.reverted and p.confirmations >= 3)
                assert confirmed >= inv.terms.threshold
        assert before is not Status.SETTLED or inv.status is Status.SETTLED
        assert before is not Status.INVALID or inv.status is Status.INVALID
    # Each transition into a reported state emitted its event exactly once.
    emitted = types(inv)
    for target, etype in ((Status.SETTLED, ev.INVOICE_SETTLED),
                          (Status.PROCESSING, ev.INVOICE_PROCESSING),
                          (Status.INVALID, ev.INVOICE_INVALID),
                          (Status.EXPIRED, ev.INVOICE_EXPIRED)):
        into = sum(1 for _, after in seen_transitions if after is target)
        assert emitted.count(etype) == into
    assert emitted.count(ev.INVOICE_PAYMENT_REVERTED) <= 1


def test_the_tally_counts_what_settles_apart_from_what_was_seen() -> None:
    from gateway.domain.invoices import Tally

    terms = make().terms
    seen = Tally.of([pay(DUE // 2, 2, txid="a"), pay(DUE // 2, 0, txid="b"),
                     pay(DUE, 5, txid="c", reverted=True)], terms)
    assert (seen.received, seen.confirmed, seen.in_chain) == (DUE, DUE // 2, DUE // 2)
    assert seen.on_time and seen.paid_at == T0 + timedelta(minutes=1)
    late = Tally.of([pay(DUE, 2, minute=20)], terms)
    assert not late.on_time and late.paid_at == T0 + timedelta(minutes=20)
    assert Tally.of([], terms) == Tally(0, 0, 0, None, False)
