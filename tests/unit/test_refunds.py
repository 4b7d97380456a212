"""The refund's life (gateway/domain/refunds.py): every transition, the two-approver
rule, the credit it holds and returns. Pure: an injected time, no I/O."""

from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.credit import CreditKind, balance
from gateway.domain.errors import InvalidInput
from gateway.domain.refunds import (
    Quote,
    Refund,
    RefundStateError,
    RefundStatus,
    SameApprover,
    approvals_needed,
)

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
QUOTE = Quote(1_000_000, "80.5", "litecoin:ltc1qx?amount=0.01", psbt="cHNidP8=", fee=200,
              spends=(("aa" * 32, 0),))


def refund(needed: int = 1, amount: int = 1250) -> Refund:
    return Refund.request(id="rfd_1", account_id="acc_1", amount=amount, currency="EUR",
                          coin="LTC", address="ltc1qx", now=T0, approvals_needed=needed)


def types(r: Refund) -> list[str]:
    return [e.type for e in r.events]


def test_a_request_is_pending_holds_its_amount_and_is_announced() -> None:
    r = refund()
    assert r.status is RefundStatus.REQUESTED and not r.final
    hold = r.hold_entry()
    assert (hold.kind, hold.amount, hold.cause, hold.refund_id) == (
        CreditKind.REFUND, -1250, "refund:rfd_1", "rfd_1")
    assert types(r) == ["refund.requested"]
    assert r.events[0].data["amount"] == "12.50"


def test_zero_or_naive_times_are_refused() -> None:
    with pytest.raises(InvalidInput):
        refund(amount=0)
    with pytest.raises(ValueError):
        Refund("r", "a", 1, "EUR", "LTC", "x", datetime(2026, 1, 1))


def test_one_approval_approves_below_the_threshold_and_fixes_the_quote() -> None:
    r = refund()
    assert r.approve("stf_a", "  customer overpaid  ", T0 + timedelta(hours=1), QUOTE)
    assert r.status is RefundStatus.APPROVED and r.quote == QUOTE
    assert r.approvals[0].reason == "customer overpaid"
    assert r.decided_at == T0 + timedelta(hours=1)
    assert types(r)[-1] == "refund.approved"
    assert r.events[-1].data["amount_base_units"] == "1000000"


def test_the_threshold_decides_how_many_approve() -> None:
    assert approvals_needed(5000, 5000) == 1
    assert approvals_needed(5001, 5000) == 2
    assert approvals_needed(10**9, None) == 1


def test_above_the_threshold_two_different_members_approve() -> None:
    r = refund(needed=2)
    assert not r.check_approval("stf_a")
    assert r.approve("stf_a", "ok", T0) is False
    assert r.status is RefundStatus.REQUESTED and r.approvals_missing == 1
    with pytest.raises(SameApprover, match="another finance member"):
        r.approve("stf_a", "again", T0, QUOTE)
    assert len(r.approvals) == 1
    assert r.check_approval("stf_b")
    assert r.approve("stf_b", "ok too", T0, QUOTE)
    assert r.status.value == "approved"
    assert [a.staff_id for a in r.approvals] == ["stf_a", "stf_b"]


def test_the_last_approval_needs_a_quote_and_every_one_a_reason() -> None:
    r = refund()
    with pytest.raises(ValueError):
        r.approve("stf_a", "ok", T0)
    with pytest.raises(InvalidInput, match="reason"):
        r.approve("stf_a", "   ", T0, QUOTE)
    assert r.approvals == [] and r.status is RefundStatus.REQUESTED


def test_refusing_needs_a_reason_and_returns_the_amount() -> None:
    r = refund()
    with pytest.raises(InvalidInput):
        r.refuse("stf_a", "", T0)
    back = r.refuse("stf_a", "address belongs to a sanctioned service", T0)
    assert r.status is RefundStatus.REFUSED and r.final and r.refused_by == "stf_a"
    assert (back.kind, back.amount, back.cause) == (
        CreditKind.REFUND_RETURNED, 1250, "refund-returned:rfd_1")
    assert balance([r.hold_entry(), back]) == 0
    assert types(r)[-1] == "refund.refused"


def test_the_customer_cancels_only_while_it_is_pending() -> None:
    r = refund()
    back = r.cancel(T0)
    assert r.status is RefundStatus.CANCELLED and back.amount == 1250
    assert types(r)[-1] == "refund.cancelled"
    with pytest.raises(RefundStateError, match="cancelled"):
        r.cancel(T0)
    approved = refund()
    approved.approve("stf_a", "ok", T0, QUOTE)
    with pytest.raises(RefundStateError, match="only a requested refund"):
        approved.cancel(T0)


@pytest.mark.parametrize("final", ["refused", "cancelled", "completed"])
def test_nothing_follows_a_final_state(final: str) -> None:
    r = refund()
    if final == "refused":
        r.refuse("stf_a", "no", T0)
    elif final == "cancelled":
        r.cancel(T0)
    else:
        r.approve("stf_a", "ok", T0, QUOTE)
        r.mark_sent("ab" * 32, T0)
        r.complete(T0)
    for step in (lambda: r.approve("stf_b", "ok", T0, QUOTE), lambda: r.cancel(T0),
                 lambda: r.refuse("stf_b", "no", T0), lambda: r.mark_sent("cd", T0),
                 r.unsend, lambda: r.complete(T0)):
        with pytest.raises(RefundStateError):
            step()
    assert r.status == final


def test_sent_goes_back_to_approved_when_its_payment_leaves_the_chain() -> None:
    r = refund()
    with pytest.raises(RefundStateError):
        r.mark_sent("ab" * 32, T0)
    r.approve("stf_a", "ok", T0, QUOTE)
    r.mark_sent("ab" * 32, T0 + timedelta(minutes=5), tx_key="k" * 64)
    assert (r.status, r.txid, r.tx_key) == (RefundStatus.SENT, "ab" * 32, "k" * 64)
    r.unsend()
    assert (r.status, r.txid, r.sent_at) == (RefundStatus.APPROVED, None, None)
    r.mark_sent("cd" * 32, T0 + timedelta(minutes=9))
    r.complete(T0 + timedelta(hours=1))
    assert r.status is RefundStatus.COMPLETED and r.completed_at == T0 + timedelta(hours=1)
    assert types(r)[-1] == "refund.completed" and r.events[-1].data["txid"] == "cd" * 32
