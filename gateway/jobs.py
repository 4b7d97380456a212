"""The periodic jobs: time-driven invoice transitions (the sweeper), retention, backups.
Each runs on one instance at a time (see `bootstrap.background_tasks`)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from gateway.services.chain_events import PaymentTracker
from gateway.services.retention import RetentionService

log = logging.getLogger(__name__)


async def every(interval: float, job: Callable[[], Awaitable[object]], what: str) -> None:
    """Run `job` now and then every `interval` seconds until cancelled. A failure is
    logged and the next run comes on schedule: one bad run never stops the task."""
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed", what)
        await asyncio.sleep(interval)


async def run_sweeper(tracker: PaymentTracker, interval: float = 1.0) -> None:
    await every(interval, tracker.sweep, "invoice sweep")


async def run_retention(retention: RetentionService, interval: float = 3600.0,
                        on_success: Callable[[], None] | None = None) -> None:
    """Every interval (hourly): nothing outlives its retention period by more than that."""

    async def once() -> None:
        counts = await retention.run()
        if any(counts.values()):
            log.info("retention removed %s", counts)
        if on_success is not None:
            on_success()

    await every(interval, once, "retention run")


class BackupWriter(Protocol):
    def create(self, out_dir: Path, now: datetime) -> Path: ...


async def run_backups(backups: BackupWriter, out_dir: Path, keep: timedelta,
                      interval: float, clock: Callable[[], datetime],
                      prune: Callable[[Path, timedelta, datetime], list[Path]],
                      on_success: Callable[[], None] | None = None) -> None:
    """A backup every interval, then anything older than `keep` goes. The file work runs
    in a thread so the event loop keeps serving."""

    async def once() -> None:
        path = await asyncio.to_thread(backups.create, out_dir, clock())
        removed = await asyncio.to_thread(prune, out_dir, keep, clock())
        log.info("backup written to %s; %d old backups pruned", path.name, len(removed))
        if on_success is not None:
            on_success()

    await every(interval, once, "backup")
