"""What the merchant's own wallet needs to know to find every payment."""

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Gap:
    derived: int  # addresses handed out: indexes 0 .. derived-1
    longest: int  # longest run of consecutive addresses that never received anything
    start: int | None  # first index of that run

    @property
    def end(self) -> int | None:
        return None if self.start is None else self.start + self.longest - 1


def longest_unused_run(derived: int, used: Iterable[int]) -> Gap:
    """The run a wallet must be willing to skip (its gap limit) to reach every used
    address, counting the unused tail too: a payment may still arrive there."""
    used_set = {i for i in used if 0 <= i < derived}
    best, best_start, run, run_start = 0, None, 0, 0
    for index in range(derived):
        if index in used_set:
            run = 0
            continue
        if run == 0:
            run_start = index
        run += 1
        if run > best:
            best, best_start = run, run_start
    return Gap(derived, best, best_start)
