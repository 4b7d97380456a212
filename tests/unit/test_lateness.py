"""Lateness is judged by the earliest evidence of a payment, not by when the watcher happened
to see it: a customer who paid in time while the gateway was down did not pay late."""

from datetime import timedelta

import pytest

from gateway.domain import events as ev
from gateway.domain.invoices import (
    DEFAULT_BLOCK_TIME_TOLERANCE,
    InvoiceException,
    ObservedPayment,
    Status,
    completion_time,
)
from tests.unit.test_invoice_state import DUE, T0, make, types

EXPIRY = T0 + timedelta(minutes=15)  # make() invoices expire here
TOL = timedelta(minutes=10)


def at(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


def mined(amount: int, conf: int, block_minute: float, seen_minute: float, txid: str = "a"
          ) -> ObservedPayment:
    """A payment the watcher first saw in a block (it was down when it was paid)."""
    return ObservedPayment(txid, 0, amount, conf, T0 + at(seen_minute),
                           block_time=T0 + at(block_minute))


def pooled(amount: int, conf: int, seen_minute: float, txid: str = "a") -> ObservedPayment:
    """A payment the watcher first saw in the mempool."""
    return ObservedPayment(txid, 0, amount, conf, T0 + at(seen_minute))


@pytest.mark.parametrize(("payment", "expected"), [
    (pooled(DUE, 0, 12), T0 + at(12)),                  # our own mempool sighting
    (mined(DUE, 1, 14, 40), T0 + at(14) - TOL),         # block time, less the tolerance
    (mined(DUE, 1, 14, 14.1), T0 + at(14) - TOL),       # ... also when we were up
    (mined(DUE, 1, 90, 14), T0 + at(14)),               # a fast miner clock: our sighting
])
def test_evidence_is_the_mempool_sighting_else_the_block_time_less_tolerance(
    payment: ObservedPayment, expected: object
) -> None:
    assert payment.paid_at(TOL) == expected


def test_default_tolerance_is_small_and_bounded() -> None:
    assert timedelta(0) < DEFAULT_BLOCK_TIME_TOLERANCE <= timedelta(hours=2)


def test_paid_and_mined_before_expiry_but_seen_after_a_restart_is_not_late() -> None:
    # The gateway was down 10..40 min: the sweeper expires the invoice on restart before
    # the watcher has caught up with the block mined at minute 14.
    inv = make()
    inv.observe([], T0 + at(40), TOL)
    assert inv.status is Status.EXPIRED
    inv.observe([mined(DUE, 3, 14, 40)], T0 + at(40), TOL)
    assert (inv.status, inv.exception) == (Status.SETTLED, None)
    assert types(inv) == [ev.INVOICE_EXPIRED, ev.INVOICE_SETTLED]


def test_caught_up_before_the_sweep_settles_directly_and_never_expires() -> None:
    inv = make()
    inv.observe([mined(DUE, 3, 14, 40)], T0 + at(40), TOL)
    assert (inv.status, inv.exception) == (Status.SETTLED, None)
    assert types(inv) == [ev.INVOICE_SETTLED]


def test_paid_in_time_but_not_deep_enough_yet_reopens_as_processing() -> None:
    inv = make(confirmations=3)
    inv.observe([], T0 + at(40), TOL)
    inv.observe([mined(DUE, 1, 14, 40)], T0 + at(40), TOL)
    assert (inv.status, inv.exception) == (Status.PROCESSING, None)
    inv.observe([mined(DUE, 3, 14, 40)], T0 + at(45), TOL)
    assert (inv.status, inv.exception) == (Status.SETTLED, None)
    assert types(inv) == [ev.INVOICE_EXPIRED, ev.INVOICE_PROCESSING, ev.INVOICE_SETTLED]


def test_block_within_the_tolerance_after_expiry_counts_in_the_customers_favour() -> None:
    inv = make()
    inv.observe([], T0 + at(40), TOL)
    inv.observe([mined(DUE, 3, 24, 40)], T0 + at(40), TOL)  # 9 min after expiry
    assert (inv.status, inv.exception) == (Status.SETTLED, None)


@pytest.mark.parametrize("accept", [False, True])
def test_block_mined_after_expiry_plus_tolerance_is_late(accept: bool) -> None:
    inv = make(accept_late=accept)
    inv.observe([], T0 + at(40), TOL)
    inv.observe([mined(DUE, 3, 25, 40)], T0 + at(40), TOL)  # exactly expiry + tolerance
    final = Status.SETTLED if accept else Status.EXPIRED
    assert (inv.status, inv.exception) == (final, InvoiceException.PAID_LATE)


def test_without_tolerance_the_block_time_alone_decides() -> None:
    on_time, late = make(), make()
    on_time.observe([mined(DUE, 3, 14.9, 40)], T0 + at(40), timedelta(0))
    late.observe([], T0 + at(40), timedelta(0))
    late.observe([mined(DUE, 3, 15, 40)], T0 + at(40), timedelta(0))
    assert (on_time.status, on_time.exception) == (Status.SETTLED, None)
    assert (late.status, late.exception) == (Status.EXPIRED, InvoiceException.PAID_LATE)


def test_seen_in_the_mempool_before_expiry_is_not_late_when_mined_after() -> None:
    inv = make()
    inv.observe([pooled(DUE, 0, 14)], T0 + at(14), TOL)
    inv.observe([pooled(DUE, 3, 14)], T0 + at(30), TOL)
    assert (inv.status, inv.exception) == (Status.SETTLED, None)


def test_seen_in_the_mempool_after_expiry_is_late_whatever_the_tolerance() -> None:
    # A running gateway saw it late: that is direct evidence, no block time can undo it.
    inv = make()
    inv.observe([], T0 + at(15), TOL)
    inv.observe([pooled(DUE, 3, 16)], T0 + at(30), timedelta(hours=2))
    assert (inv.status, inv.exception) == (Status.EXPIRED, InvoiceException.PAID_LATE)


def test_a_miners_fast_clock_never_makes_a_payment_we_saw_in_time_late() -> None:
    inv = make()
    inv.observe([mined(DUE, 3, 14 + 120, 14)], T0 + at(14.5), TOL)  # header 2 h ahead
    assert (inv.status, inv.exception) == (Status.SETTLED, None)


def test_completion_is_the_evidence_of_the_payment_that_reaches_the_threshold() -> None:
    half = DUE // 2
    first, second = mined(half, 3, 5, 40, "a"), pooled(DUE - half, 0, 41, "b")
    assert completion_time([second, first], DUE, TOL) == T0 + at(41)
    both_mined = [first, mined(DUE - half, 3, 14, 40, "b")]
    assert completion_time(both_mined, DUE, TOL) == T0 + at(14) - TOL
    inv = make()
    inv.observe([], T0 + at(40), TOL)
    inv.observe([first, second], T0 + at(41), TOL)
    assert (inv.status, inv.exception) == (Status.EXPIRED, InvoiceException.PAID_LATE)
