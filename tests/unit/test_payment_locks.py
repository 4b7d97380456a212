"""Payment statuses, confirmations and locks, computed in one place, and the state
machine honouring a lock: received, but not counted towards settlement."""

from datetime import UTC, datetime, timedelta

from chains.base import BlockRef, Lock, NetworkFacts
from gateway.domain.invoices import Invoice, InvoiceTerms, LockedRate, ObservedPayment, Status
from gateway.domain.money import Fiat
from gateway.domain.payments import PaymentStatus, confirmations, is_locked, locked_until
from gateway.http.checkout import lock_text

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_confirmations_count_only_confirmed_payments_from_their_block() -> None:
    assert confirmations(PaymentStatus.CONFIRMED, 10, 12) == 3
    assert confirmations(PaymentStatus.CONFIRMED, 10, 9) == 0  # tip behind: none yet
    assert confirmations(PaymentStatus.PENDING, 10, 12) == 0
    assert confirmations(PaymentStatus.REVERTED, 10, 12) == 0
    assert confirmations("confirmed", None, 12) == 0
    assert confirmations("confirmed", 10, None) == 0


def test_locks_by_height_and_time() -> None:
    assert is_locked(20, None, 18, T0)  # the next block (19) may not spend it
    assert not is_locked(20, None, 19, T0)  # the next block is 20
    assert is_locked(20, None, None, T0)  # no tip known: still locked
    assert is_locked(None, T0 + timedelta(seconds=1), 100, T0)
    assert not is_locked(None, T0, 100, T0)
    assert not is_locked(None, None, None, T0)


def invoice() -> Invoice:
    return Invoice("inv_1", "acc_1", "XMR", Fiat(100, "EUR"), LockedRate("1", "fixed", T0),
                   InvoiceTerms(1000, 12, 2, T0 + timedelta(minutes=15),
                                T0 + timedelta(days=1)), T0)


def test_a_locked_payment_is_received_but_does_not_settle() -> None:
    inv = invoice()
    locked = ObservedPayment("tx", 0, 1000, 10, T0, locked=True)
    inv.observe([locked], T0 + timedelta(minutes=1))
    assert inv.status is Status.PROCESSING
    inv.observe([locked], T0 + timedelta(minutes=30))  # past expiry: still paid in time
    assert inv.status is Status.PROCESSING
    unlocked = ObservedPayment("tx", 0, 1000, 12, T0)
    inv.observe([unlocked], T0 + timedelta(minutes=40))
    assert inv.status is Status.SETTLED


def test_locked_until_is_the_lock_while_it_holds() -> None:
    assert locked_until(20, None, 18, T0) == {"height": 20, "time": None}
    assert locked_until(20, None, 19, T0) is None  # passed
    later = T0 + timedelta(hours=1)
    assert locked_until(None, later, 5, T0) == {"height": None,
                                                "time": "2026-01-01T01:00:00Z"}
    assert locked_until(None, later, 5, later) is None
    assert locked_until(None, None, 5, T0) is None


def test_the_payment_received_webhook_carries_the_lock_while_it_holds() -> None:
    inv = invoice()
    inv.payment_received(ObservedPayment("tx", 0, 1000, 1, T0, locked=True, lock_height=40))
    inv.payment_received(ObservedPayment("ty", 0, 5, 1, T0, locked=False, lock_height=3))
    held, free = (e.data["payment"] for e in inv.events)
    assert held["locked_until"] == {"height": 40, "time": None}  # type: ignore[index]
    assert free["locked_until"] is None  # type: ignore[index]


def test_the_checkout_words_for_a_lock() -> None:
    tip = BlockRef(100, "h")
    # Spendable in block 116: once the tip is 115, 15 blocks of about 2 minutes away.
    monero = NetworkFacts("Monero", 120)  # what the Monero family says of its network
    # (English times as CLDR writes them: a narrow no-break space before AM.)
    assert lock_text(monero, Lock(height=116), tip, T0) == \
        "Received; spendable from block 116, about Jan 1, 2026, 12:30\u202fAM UTC+00:00."
    assert lock_text(monero, Lock(time=T0 + timedelta(hours=2)), tip, T0) == \
        "Received; spendable from Jan 1, 2026, 2:00\u202fAM UTC+00:00."
    assert lock_text(NetworkFacts("Dogecoin"), Lock(height=116), tip, T0) == \
        "Received; spendable from block 116."  # no typical block interval known
    assert lock_text(None, Lock(height=116), tip, T0) == "Received; spendable from block 116."
