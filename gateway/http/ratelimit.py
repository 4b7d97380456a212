"""Per-IP limits on signup and login, in memory only: IP addresses are never stored
outside the security log. With several instances each applies its own limit. IPv6
clients are counted by their /64."""

import time
from collections import deque
from collections.abc import Callable

from gateway.http.client_ip import limit_key
from gateway.i18n import N_
from gateway.services.errors import TooManyRequests

# What a customer is told, per kind of limit (translated where it is shown).
TOO_MANY = {
    "login": N_("too many login attempts from your address; wait and retry"),
    "signup": N_("too many signup attempts from your address; wait and retry"),
}


class SlidingWindow:
    def __init__(self, limit: int, seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._seconds = seconds
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str, what: str) -> None:
        self.check(key, what)
        self.record(key)

    def check(self, key: str, what: str) -> None:
        """`TooManyRequests` when `key` has used up its window; counts nothing."""
        now = self._clock()
        hits = self._hits.setdefault(limit_key(key), deque())
        while hits and now - hits[0] >= self._seconds:
            hits.popleft()
        if len(hits) >= self._limit:
            raise TooManyRequests(
                TOO_MANY.get(what, f"too many {what} attempts from your address; wait and retry"),
                self._seconds - (now - hits[0]))

    def record(self, key: str) -> None:
        now = self._clock()
        hits = self._hits.setdefault(limit_key(key), deque())
        hits.append(now)
        if len(self._hits) > 100_000:  # bounded memory under a flood of addresses
            self._hits = {k: v for k, v in self._hits.items() if v and now - v[-1] < self._seconds}
