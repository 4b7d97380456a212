"""A clock for a gateway under test whose schedules run on days or minutes: real time plus
an offset that the test moves forward, so a period passes in one step instead of a wait.

It keeps running between steps (unlike `fake_gateway.Clock`): what the gateway does on
real-time intervals (retries, polls, webhook timestamps checked against the receiver's
clock) still sees time go by."""

import threading
from datetime import UTC, datetime, timedelta


class MovableClock:
    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._held: datetime | None = None
        self._lock = threading.Lock()  # read on the gateway's thread, moved on the test's

    def __call__(self) -> datetime:
        with self._lock:
            return self._held or datetime.now(UTC) + self._offset

    def hold(self) -> None:
        """Stops the clock where it is until `release`: a one-second lock then outlasts
        however long a loaded machine takes over the requests that check it."""
        with self._lock:
            self._held = self._held or datetime.now(UTC) + self._offset

    def release(self) -> None:
        """Runs on from where it was held (never back)."""
        with self._lock:
            if self._held is not None:
                self._offset = self._held - datetime.now(UTC)
                self._held = None

    @property
    def offset(self) -> timedelta:
        with self._lock:
            return self._offset

    def to(self, when: datetime) -> None:
        """Jump to `when` (never back: a clock the gateway reads only goes forward)."""
        self.advance(when - self())

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            if self._held is not None:
                self._held += max(delta, timedelta(0))
            else:
                self._offset += max(delta, timedelta(0))
