"""One task per configured chain: chain events -> service commands. A second small task
drives the time-based transitions (expiry, end of monitoring)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from chains.base import (
    BlockConnected,
    BlockDisconnected,
    Chain,
    ChainError,
    MempoolGone,
    MempoolSeen,
    Watchlist,
)
from gateway.services.chain_events import PaymentTracker
from gateway.services.retention import RetentionService

log = logging.getLogger(__name__)


class ChainWatcher:
    def __init__(
        self,
        chain: Chain,
        tracker: PaymentTracker,
        watchlist: Watchlist,
        retry_delay: float = 2.0,
        on_block: Callable[[str, int], None] | None = None,
    ) -> None:
        self._chain = chain
        self._tracker = tracker
        self._watchlist = watchlist
        self._retry = retry_delay
        self._on_block = on_block
        self._progressed = False

    async def run(self) -> None:
        coin = self._chain.coin
        delay = self._retry
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except ChainError as exc:
                log.warning("%s: %s; retrying in %.0fs", coin, exc, delay)
            except Exception:
                log.exception("%s watcher failed; restarting from the stored cursor", coin)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0) if not self._progressed else self._retry
            self._progressed = False

    async def _follow(self) -> None:
        coin = self._chain.coin
        cursor = await self._tracker.start_cursor(coin)
        if cursor is None:
            # First run: nothing can have been paid before the first invoice, which needs
            # this service; start at the node's tip.
            cursor = await self._chain.tip()
            await self._tracker.set_cursor(coin, cursor)
        log.info("%s: following from height %d", coin, cursor.height)
        unconfirmed = await self._tracker.unconfirmed(coin)
        async for event in self._chain.follow(cursor, self._watchlist, unconfirmed):
            self._progressed = True
            match event:
                case BlockConnected():
                    await self._tracker.block_connected(coin, event)
                    if self._on_block is not None:
                        self._on_block(coin, event.block.height)
                case BlockDisconnected():
                    log.warning("%s: block %d left the main chain", coin, event.block.height)
                    await self._tracker.block_disconnected(coin, event)
                case MempoolSeen():
                    await self._tracker.mempool_seen(coin, event)
                case MempoolGone():
                    await self._tracker.mempool_gone(coin, event)


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
