"""Prepaid time in the domain, with an injected clock: what each payment buys, from when,
and the billing state the time alone moves on. No time lost, none given away."""

from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain import events as ev
from gateway.domain.accounts import Account
from gateway.domain.billing import (
    BillingState,
    Period,
    extend,
    periods_paid,
)
from gateway.domain.errors import InvalidInput
from gateway.domain.invoices import (
    Invoice,
    InvoiceTerms,
    LockedRate,
    ObservedPayment,
    Status,
    completion_time,
)
from gateway.domain.money import Fiat

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MONTH = Period(months=1)
DAYS30 = Period(seconds=30 * 86400)
GRACE = timedelta(days=3)
DUE = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, **delta: float) -> datetime:
        return T0 + timedelta(**delta)


class Customer:
    """One account paying plan invoices in the domain, as the tracker drives it."""

    def __init__(self, period: Period = DAYS30, allow_over: bool = False) -> None:
        self.clock = Clock()
        self.account = Account("acc_1", T0)
        self.period = period
        self.allow_over = allow_over
        self.n = 0

    def pay(self, amount: int = DUE, confirmations: int = 6,
            paid_at: datetime | None = None) -> Invoice:
        """An invoice for the plan, paid `amount` (seen at `paid_at`, default now); settles
        and credits the account when paid in full."""
        now = self.clock()
        self.n += 1
        invoice = Invoice(
            f"inv_{self.n}", "acc_1", "LTC", Fiat(999, "EUR"), LockedRate("80", "fixed", now),
            InvoiceTerms(DUE, 8, 6, now + timedelta(minutes=15), now + timedelta(days=1)),
            now, {"plan": "vps"})
        seen = paid_at or now
        payments = [ObservedPayment(f"tx{self.n}", 0, amount, confirmations, seen)]
        invoice.observe(payments, now)
        if invoice.status is Status.SETTLED:
            paid = completion_time(payments, invoice.terms.threshold) or now
            ext = extend(self.account.paid_until, min(paid, now), self.period,
                         periods_paid(DUE, amount, self.allow_over), self.account.paid_since)
            self.account.credit(invoice.id, "vps", "LTC", ext, invoice.metadata, now)
        return invoice

    def tick(self) -> list[BillingState]:
        return self.account.advance(self.clock(), GRACE)

    def types(self) -> list[str]:
        out = [e.type for e in self.account.events]
        self.account.events.clear()
        return out


def test_period_parsing_and_calendar_months() -> None:
    assert Period.parse("1 month") == Period(months=1)
    assert Period.parse("12 months") == Period.parse("1 year") == Period(months=12)
    assert Period.parse("30 days") == Period(seconds=30 * 86400)
    assert Period.parse("90 seconds") == Period(seconds=90)
    assert Period.parse("2 Weeks") == Period(seconds=14 * 86400)
    for bad in ("", "month", "0 days", "1 fortnight", "-1 day", "1.5 days"):
        with pytest.raises(InvalidInput):
            Period.parse(bad)
    jan31 = datetime(2026, 1, 31, 10, tzinfo=UTC)
    assert MONTH.add(jan31) == datetime(2026, 2, 28, 10, tzinfo=UTC)
    assert MONTH.add(jan31, 2) == datetime(2026, 3, 31, 10, tzinfo=UTC)
    assert Period(months=12).add(datetime(2028, 2, 29, tzinfo=UTC)) == datetime(
        2029, 2, 28, tzinfo=UTC)
    assert MONTH.add(datetime(2026, 12, 15, tzinfo=UTC)) == datetime(2027, 1, 15, tzinfo=UTC)


def test_first_payment_activates_with_paid_until() -> None:
    c = Customer()
    c.pay()
    assert c.account.paid_until == T0 + timedelta(days=30)
    assert c.account.billing_state is BillingState.ACTIVE
    [event] = c.account.events
    assert event.type == ev.ACCOUNT_ACTIVATED
    assert event.data["paid_until"] == "2026-01-31T00:00:00Z"
    assert event.data["reactivated"] is False


def test_paying_early_loses_no_time() -> None:
    c = Customer()
    c.pay()
    c.types()
    c.clock.now = c.clock.at(days=10)  # 20 days still paid
    c.pay()
    assert c.account.paid_until == T0 + timedelta(days=60)
    assert c.types() == [ev.ACCOUNT_RENEWED]


def test_paying_late_in_grace_counts_from_the_payment() -> None:
    c = Customer()
    c.pay()
    c.clock.now = c.clock.at(days=31)
    assert c.tick() == [BillingState.GRACE]
    c.types()
    c.pay()
    # The day in grace was not bought; the new period starts at the payment.
    assert c.account.paid_until == c.clock.at(days=61)
    assert c.account.billing_state is BillingState.ACTIVE
    assert c.types() == [ev.ACCOUNT_RENEWED]
    assert c.tick() == []


def test_payment_made_before_the_end_but_settled_in_grace_loses_nothing() -> None:
    c = Customer()
    c.pay()
    c.clock.now = c.clock.at(days=30, hours=1)  # settles an hour after the end
    c.tick()
    c.pay(paid_at=c.clock.at(days=29, hours=23))  # seen in the mempool before the end
    assert c.account.paid_until == T0 + timedelta(days=60)


def test_after_suspension_a_payment_activates_again() -> None:
    c = Customer()
    c.pay()
    c.types()
    c.clock.now = c.clock.at(days=30)
    assert c.tick() == [BillingState.GRACE]
    c.clock.now = c.clock.at(days=33)
    assert c.tick() == [BillingState.SUSPENDED]
    assert c.types() == [ev.ACCOUNT_GRACE, ev.ACCOUNT_SUSPENDED]
    c.clock.now = c.clock.at(days=40)
    assert c.tick() == []  # each transition once
    c.pay()
    [event] = c.account.events
    assert event.type == ev.ACCOUNT_ACTIVATED and event.data["reactivated"] is True
    assert c.account.paid_until == c.clock.at(days=70)
    assert c.account.activated_at == T0  # first activation kept


def test_a_clock_jump_announces_each_state_once_and_in_order() -> None:
    c = Customer()
    c.pay()
    c.types()
    c.clock.now = c.clock.at(days=90)
    assert c.tick() == [BillingState.GRACE, BillingState.SUSPENDED]
    c.clock.now = c.clock.at(days=1)  # the clock jumps back
    assert c.tick() == []
    c.clock.now = c.clock.at(days=91)
    assert c.tick() == []
    assert c.types() == [ev.ACCOUNT_GRACE, ev.ACCOUNT_SUSPENDED]


def test_twice_in_one_period_buys_two_periods() -> None:
    c = Customer()
    c.pay()
    c.clock.now = c.clock.at(days=5)
    c.pay()
    c.clock.now = c.clock.at(days=6)
    c.pay()
    assert c.account.paid_until == T0 + timedelta(days=90)


def test_partial_payment_extends_nothing() -> None:
    c = Customer()
    c.pay()
    c.clock.now = c.clock.at(days=10)
    invoice = c.pay(amount=DUE - 1)
    assert invoice.status is not Status.SETTLED
    assert c.account.paid_until == T0 + timedelta(days=30)


@pytest.mark.parametrize(("allow", "periods"), [(True, 3), (False, 1)])
def test_paying_three_times_the_price_buys_three_periods_only_when_allowed(
        allow: bool, periods: int) -> None:
    c = Customer(allow_over=allow)
    c.pay(amount=3 * DUE)
    assert c.account.paid_until == T0 + timedelta(days=30 * periods)


def test_overpayment_by_less_than_a_period_buys_nothing_more() -> None:
    assert periods_paid(DUE, 2 * DUE - 1, allow_over=True) == 1
    assert periods_paid(DUE, 2 * DUE, allow_over=True) == 2
    assert periods_paid(DUE, 100 * DUE, allow_over=True, max_periods=36) == 36


def test_calendar_months_stack_without_drift() -> None:
    c = Customer(period=MONTH)
    c.clock.now = datetime(2026, 1, 31, tzinfo=UTC)
    c.pay()
    assert c.account.paid_until == datetime(2026, 2, 28, tzinfo=UTC)
    c.clock.now = datetime(2026, 2, 10, tzinfo=UTC)
    c.pay()  # early: from 28 Feb, and months count from 31 Jan: 31 Mar, not 28 Mar
    assert c.account.paid_until == datetime(2026, 3, 31, tzinfo=UTC)
    c.pay()
    assert c.account.paid_until == datetime(2026, 4, 30, tzinfo=UTC)
    c.pay()
    assert c.account.paid_until == datetime(2026, 5, 31, tzinfo=UTC)
    # A gap starts a new run: from the payment.
    c.clock.now = datetime(2026, 7, 2, tzinfo=UTC)
    c.pay()
    assert c.account.paid_until == datetime(2026, 8, 2, tzinfo=UTC)


def test_renewal_due() -> None:
    c = Customer()
    c.pay()
    lead = timedelta(days=7)
    assert not c.account.renewal_due(c.clock.at(days=22), lead)
    assert c.account.renewal_due(c.clock.at(days=23), lead)
    c.account.schedule_deletion(c.clock.at(days=23), timedelta(days=7))
    assert not c.account.renewal_due(c.clock.at(days=23), lead)


def test_a_deleted_account_is_never_credited() -> None:
    c = Customer()
    c.pay()
    c.account.erase(c.clock.at(days=1))
    c.types()
    c.clock.now = c.clock.at(days=2)
    c.pay()
    assert c.account.paid_until is None  # cleared by the erasure, and not credited since
    assert c.types() == []
    assert c.tick() == []
