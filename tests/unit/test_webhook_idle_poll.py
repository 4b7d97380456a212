"""How often an idle delivery worker looks for retries that fell due: every second, or as
often as the shortest retry delay when that is shorter, so a test's half-second schedule
runs at half-second steps, not at the one-second poll (it took 8 s for 8 attempts)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhooks.retry import RetryPolicy
from webhooks.worker import DeliveryWorker

pytestmark = pytest.mark.unit


def worker(*delays: float, **kwargs: Any) -> DeliveryWorker:
    policy = RetryPolicy(tuple(timedelta(seconds=d) for d in delays))
    return DeliveryWorker(None, lambda: datetime.now(UTC), policy=policy,  # type: ignore[arg-type]
                          **kwargs)


def test_the_idle_poll_follows_the_shortest_retry_delay_below_a_second() -> None:
    assert worker(5, 300, 1800).idle_interval == 1.0  # the Standard Webhooks schedule
    assert worker(0.5, 0.5).idle_interval == 0.5
    assert worker(2, 0.2).idle_interval == 0.2
    assert worker(0.001).idle_interval == 0.05  # never a busy loop
    assert worker(0.5, idle_interval=3.0).idle_interval == 3.0  # as asked
