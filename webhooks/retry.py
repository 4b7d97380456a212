"""When to try a delivery again: pure policy, no I/O."""

import email.utils
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

# 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: about 27 h in all, as Standard Webhooks suggests.
DEFAULT_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    DISABLE = "disable"  # 410 Gone: the receiver asked us to stop


def classify(status: int | None) -> Outcome:
    if status is not None and 200 <= status < 300:
        return Outcome.SUCCEEDED
    if status == 410:
        return Outcome.DISABLE
    return Outcome.RETRY  # includes 3xx: redirects are not followed


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when - now, timedelta(0))


@dataclass(frozen=True)
class RetryPolicy:
    schedule: tuple[timedelta, ...] = DEFAULT_SCHEDULE
    jitter: float = 0.1  # +/- fraction of each delay, so retries of many events spread out
    max_retry_after: timedelta = timedelta(hours=10)

    def next_attempt(
        self,
        attempts_made: int,
        now: datetime,
        retry_after: timedelta | None = None,
        rand: Callable[[], float] = lambda: 0.5,
    ) -> datetime | None:
        """Time of the next try after `attempts_made` failed attempts; None when exhausted."""
        if attempts_made > len(self.schedule):
            return None
        delay = self.schedule[attempts_made - 1]
        delay = delay * (1 + self.jitter * (2 * rand() - 1))
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return now + delay
