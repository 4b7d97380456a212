"""A refund on the chain: the gateway watches the customer's address like one of its own
once a refund is approved, and decides from what it sees there whether the operator's
wallet has sent it (`sent`) and whether that payment is at the coin's depth
(`completed`). Pure: the caller computes confirmations from its tip.

Completed is final, as settled is for an invoice: a payment at the coin's depth is not
expected to leave the chain. Before that, a reorg or a replaced transaction takes a sent
refund back to waiting, and the next payment seen counts instead."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gateway.domain.refunds import Refund, RefundStatus


class ChainState(StrEnum):
    WAITING = "waiting"  # approved; nothing paid to the customer's address yet
    SENT = "sent"  # enough paid to the address, not yet at the coin's depth
    COMPLETED = "completed"  # at the coin's depth


@dataclass(frozen=True)
class Sighting:
    """An output paying the refund's address, as the chain shows it now."""

    txid: str
    output_index: int
    amount: int
    confirmations: int  # 0: in the mempool, or its block left the main chain
    reverted: bool = False  # replaced or double-spent: gone for good


@dataclass(frozen=True)
class Progress:
    state: ChainState
    txid: str | None  # the transaction that pays it


# How much more than the refund one output may pay and still be it (an operator rounding
# up by hand); anything else paid to the customer's address is not the refund.
OVERPAY_SLACK_BASIS_POINTS = 100


def pays_refund(amount: int, sighting: Sighting) -> bool:
    """One output paying the refund: at least its amount, at most 1 % more. The customer's
    address may receive other money (an exchange's deposit address does); a deposit of
    another amount, or several small ones, never pass for the refund."""
    slack = amount * OVERPAY_SLACK_BASIS_POINTS // 10_000
    return amount <= sighting.amount <= amount + slack


def progress(amount: int, required: int, sightings: Sequence[Sighting]) -> Progress:
    """Where a refund of `amount` base units stands, needing `required` confirmations:
    the deepest live output that pays it decides."""
    paying = sorted((s for s in sightings if not s.reverted and pays_refund(amount, s)),
                    key=lambda s: (-s.confirmations, s.txid, s.output_index))
    if not paying:
        return Progress(ChainState.WAITING, None)
    best = paying[0]
    state = ChainState.COMPLETED if best.confirmations >= required else ChainState.SENT
    return Progress(state, best.txid)


@dataclass
class RefundWatch:
    """What the watcher knows of one approved refund (the refund itself follows it:
    `follow`)."""

    refund_id: str
    account_id: str
    coin: str
    match_key: bytes
    amount: int
    confirmations_required: int
    state: ChainState = ChainState.WAITING
    txid: str | None = None
    sent_at: datetime | None = None
    completed_at: datetime | None = None

    def observe(self, sightings: Sequence[Sighting], now: datetime) -> bool:
        """Brings the state in line with the sightings; True when it changed."""
        if self.state is ChainState.COMPLETED:
            return False
        seen = progress(self.amount, self.confirmations_required, sightings)
        if (seen.state, seen.txid) == (self.state, self.txid):
            return False
        self.state, self.txid = seen.state, seen.txid
        if seen.state is ChainState.WAITING:
            self.sent_at = None
        elif self.sent_at is None:
            self.sent_at = now
        if seen.state is ChainState.COMPLETED:
            self.completed_at = now
        return True


def follow(refund: Refund, watch: RefundWatch, now: datetime) -> bool:
    """The refund takes the state its watch found on the chain (sent, completed, or
    approved again after a reorg); True when it changed. Its own events (`refund.
    completed`) go out with it."""
    before = (refund.status, refund.txid)
    if refund.status is RefundStatus.SENT and (
            watch.state is ChainState.WAITING or watch.txid != refund.txid):
        refund.unsend()
    if watch.state is not ChainState.WAITING and refund.status is RefundStatus.APPROVED:
        assert watch.txid is not None
        refund.mark_sent(watch.txid, watch.sent_at or now)
    if watch.state is ChainState.COMPLETED and refund.status is RefundStatus.SENT:
        refund.complete(now)
    return (refund.status, refund.txid) != before
