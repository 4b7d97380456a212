"""Prepaid time: plan periods, how many periods a payment buys, and the account's billing
state over time (active -> grace -> suspended; a payment makes it active again).

Pure: the clock is passed in. The account's own methods (`Account.credit`,
`Account.advance`) use these and record the events."""

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from gateway.domain.errors import InvalidInput


class BillingState(StrEnum):
    ACTIVE = "active"
    GRACE = "grace"
    SUSPENDED = "suspended"


_UNITS = {
    "second": (0, 1), "minute": (0, 60), "hour": (0, 3600), "day": (0, 86400),
    "week": (0, 7 * 86400), "month": (1, 0), "year": (12, 0),
}
_PERIOD = re.compile(r"^\s*(\d{1,6})\s*([a-z]+?)s?\s*$")


@dataclass(frozen=True)
class Period:
    """A plan's period: calendar months (a month or a year) or a fixed number of seconds
    (seconds, minutes, hours, days, weeks). Never both."""

    months: int = 0
    seconds: int = 0

    @classmethod
    def parse(cls, text: str, field_name: str = "period") -> "Period":
        """ "1 month", "12 months", "1 year", "30 days", "2 weeks", "90 seconds"."""
        match = _PERIOD.match(text.lower()) if isinstance(text, str) else None
        if match is None or match.group(2) not in _UNITS or int(match.group(1)) == 0:
            raise InvalidInput(field_name, f"{text!r} is not a period such as \"1 month\", "
                               "\"30 days\" or \"90 seconds\" (units: seconds, minutes, "
                               "hours, days, weeks, months, years)")
        count = int(match.group(1))
        months, seconds = _UNITS[match.group(2)]
        return cls(months * count, seconds * count)

    def add(self, start: datetime, times: int = 1) -> datetime:
        """`start` moved `times` periods on. Months are calendar months: the same day of
        the month, or the month's last day when it has no such day (31 Jan + 1 month =
        28 Feb); `times` periods are added at once, so 31 Jan + 2 months = 31 Mar."""
        if self.months:
            total = start.month - 1 + self.months * times
            year, month = start.year + total // 12, total % 12 + 1
            day = min(start.day, calendar.monthrange(year, month)[1])
            return start.replace(year=year, month=month, day=day)
        return start + timedelta(seconds=self.seconds * times)


def periods_paid(amount_due: int, received: int, allow_over: bool,
                 max_periods: int = 36) -> int:
    """How many periods a settled invoice pays for: one; or, when the operator allows
    it, as many whole periods as the amount received covers (an overpayment by less
    than a whole period buys nothing more). At most `max_periods`."""
    if not allow_over or amount_due <= 0:
        return 1
    return max(1, min(received // amount_due, max_periods))


@dataclass(frozen=True)
class Extension:
    """What one settled invoice bought: [starts_at, ends_at). `since` is where the
    unbroken run of paid time it belongs to began (calendar months count from there)."""

    starts_at: datetime
    ends_at: datetime
    periods: int
    since: datetime


def extend(paid_until: datetime | None, paid_at: datetime, period: Period,
           periods: int, since: datetime | None = None) -> Extension:
    """From the later of the payment and the current end: paying early never loses time,
    paying late never buys the time that already passed.

    Calendar months count from the start of the unbroken run (`since`), so clamping to a
    short month loses nothing: paid from 31 Jan, one month ends 28 Feb and the next one
    31 Mar (not 28 Mar)."""
    if paid_until is None or paid_until < paid_at:
        return Extension(paid_at, period.add(paid_at, periods), periods, paid_at)
    start, run = paid_until, since if since is not None and since <= paid_until else paid_until
    if period.months and run != start:
        done = (start.year - run.year) * 12 + start.month - run.month
        if done > 0 and done % period.months == 0 and \
                Period(months=done).add(run) == start:
            end = Period(months=done + period.months * periods).add(run)
            return Extension(start, end, periods, run)
    return Extension(start, period.add(start, periods), periods, run)
