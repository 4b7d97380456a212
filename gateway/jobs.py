"""The periodic jobs: time-driven invoice transitions (the sweeper), retention, backups.
Each runs on one instance at a time (see `bootstrap.background_jobs`)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from gateway.logs import failure
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
        except Exception as exc:
            # Not log.exception: a database error's message quotes its parameters.
            log.error("%s failed: %s", what, failure(exc))
        await asyncio.sleep(interval)


async def run_sweeper(tracker: PaymentTracker, interval: float = 1.0) -> None:
    await every(interval, tracker.sweep, "invoice sweep")


async def run_retention(retention: RetentionService, interval: float = 3600.0,
                        report: Callable[[dict[str, int]], None] | None = None) -> None:
    """Every interval (hourly): nothing outlives its retention period by more than that.
    `report` hears each completed run's counts (erasure failures among them)."""

    async def once() -> None:
        counts = await retention.run()
        if any(counts.values()):
            log.info("retention removed %s", counts)
        if report is not None:
            report(counts)

    await every(interval, once, "retention run")


class BackupWriter(Protocol):
    def create(self, out_dir: Path, now: datetime) -> Path: ...


@dataclass(frozen=True)
class BackupRun:
    written: Path | None  # None: the backup failed (logged)
    pruned: int
    prune_failed: bool    # some old backup could not be deleted (logged)


async def backup_once(backups: BackupWriter, out_dir: Path, keep: timedelta,
                      clock: Callable[[], datetime],
                      prune: Callable[[Path, timedelta, datetime], list[Path]]) -> BackupRun:
    """Old backups are pruned first and whatever the new backup does: a backup that fails
    every time must not keep the old ones past their 30 days. The file work runs in a
    thread so the event loop keeps serving."""
    pruned, prune_failed = 0, False
    try:
        pruned = len(await asyncio.to_thread(prune, out_dir, keep, clock()))
    except Exception as exc:
        prune_failed = True
        log.error("pruning old backups in %s failed; retried at the next run: %s", out_dir,
                  failure(exc))
    written = None
    try:
        written = await asyncio.to_thread(backups.create, out_dir, clock())
    except Exception as exc:
        log.error("backup failed; retried at the next run: %s", failure(exc))
    if written is not None:
        log.info("backup written to %s; %d old backups pruned", written.name, pruned)
    return BackupRun(written, pruned, prune_failed)


async def run_backups(backups: BackupWriter, out_dir: Path, keep: timedelta,
                      interval: float, clock: Callable[[], datetime],
                      prune: Callable[[Path, timedelta, datetime], list[Path]],
                      report: Callable[[BackupRun], None] | None = None) -> None:
    """A pruning and a backup every interval; `report` hears how each run went."""

    async def once() -> None:
        outcome = await backup_once(backups, out_dir, keep, clock, prune)
        if report is not None:
            report(outcome)

    await every(interval, once, "backup")
