"""Background loops stop when cancelled, even when the cancellation arrives in the same
moment as the wake-up they wait for. On Python 3.11, `asyncio.wait_for` can swallow such
a cancellation: the webhook worker then ran on after shutdown had cancelled it, and a
graceful stop (SIGTERM) never finished."""

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from webhooks.worker import DeliveryWorker


class EmptyStore:
    """Nothing is ever due."""

    async def claim(self, *_args: Any) -> list[Any]:
        return []

    async def record(self, attempts: Sequence[Any]) -> None:
        pass

    async def renew(self, ids: Sequence[str], until: datetime) -> None:
        pass


async def test_a_worker_cancelled_as_it_is_woken_stops() -> None:
    for _ in range(20):  # the race has one moment; give it every chance
        worker = DeliveryWorker(EmptyStore(), lambda: datetime.now(UTC),  # type: ignore[arg-type]
                                idle_interval=0.05)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.01)  # idle: waiting for a wake-up
        worker.wake()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        assert done, "the worker went on after it was cancelled"
        assert task.cancelled()
