"""Payments as the chain shows them: one status type, and confirmations and locks computed
in one place."""

from datetime import datetime
from enum import StrEnum

from gateway.domain.timestamps import rfc3339


class PaymentStatus(StrEnum):
    PENDING = "pending"  # in the mempool, or back there after its block left the chain
    CONFIRMED = "confirmed"  # in a block of the main chain
    REVERTED = "reverted"  # replaced, double-spent or otherwise gone for good


def confirmations(status: PaymentStatus, block_height: int | None, tip_height: int | None) -> int:
    """Blocks on top of (and including) the payment's block, as far as the chain has been
    processed; 0 unless confirmed."""
    if status != PaymentStatus.CONFIRMED or block_height is None or tip_height is None:
        return 0
    return max(tip_height - block_height + 1, 0)


def is_locked(lock_height: int | None, lock_time: datetime | None, tip_height: int | None,
              now: datetime) -> bool:
    """Whether a payment's lock still holds: it may not count before `lock_height` is the
    next block to be mined on top of `tip_height`, nor before `lock_time`."""
    if lock_height is not None and (tip_height is None or tip_height + 1 < lock_height):
        return True
    return lock_time is not None and now < lock_time


def lock_doc(lock_height: int | None, lock_time: datetime | None) -> dict[str, object]:
    """A lock as the API, the webhooks, the checkout page and the console show it
    (`locked_until`): the first block that may include a spend of it and/or the time from
    which it counts."""
    return {"height": lock_height, "time": None if lock_time is None else rfc3339(lock_time)}


def locked_until(lock_height: int | None, lock_time: datetime | None,
                 tip_height: int | None, now: datetime) -> dict[str, object] | None:
    """`lock_doc` while the lock holds; None without a lock or once it has passed."""
    if lock_height is None and lock_time is None:
        return None
    if not is_locked(lock_height, lock_time, tip_height, now):
        return None
    return lock_doc(lock_height, lock_time)
