"""The follower loop: one task per follower (one per node), chain events -> service
commands. The loop, not each adapter, refreshes the watched set: a follower yields a
`MatchPoint` right before it matches, and the loop brings the set up to date there.

A `Restorable` follower (its node keeps state our database must restore: a Monero
wallet's subaddresses) is told the highest index handed out before each follow, and
what it reports while it catches up is recorded for every instance to show."""

import asyncio
import logging

from chains.base import (
    BlockConnected,
    BlockDisconnected,
    ChainError,
    Follower,
    MatchPoint,
    MempoolGone,
    MempoolSeen,
    Restorable,
    RestoreNeeded,
    TransactionsDisconnected,
    Watchlist,
)
from gateway.logs import failure
from gateway.services.chain_events import Feed, PaymentTracker

log = logging.getLogger(__name__)


class ChainWatcher:
    def __init__(
        self,
        follower: Follower,
        tracker: PaymentTracker,
        watchlist: Watchlist,
        retry_delay: float = 2.0,
    ) -> None:
        self._follower = follower
        self._feed = Feed(follower.feed, tuple(follower.coins))
        self._tracker = tracker
        self._watchlist = watchlist
        self._retry = retry_delay
        self._progressed = False

    async def run(self) -> None:
        recorder = (asyncio.create_task(self._record_catch_up())
                    if isinstance(self._follower, Restorable) else None)
        try:
            await self._run()
        finally:
            if recorder is not None:
                recorder.cancel()
                await asyncio.gather(recorder, return_exceptions=True)

    async def _run(self) -> None:
        name = self._feed.name
        delay = self._retry
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except RestoreNeeded as exc:
                log.warning("%s: %s", name, exc)
                if self._progressed:  # at once: the database's highest index, restore
                    self._progressed = False
                    continue
            except ChainError as exc:
                log.warning("%s: %s; retrying in %.0fs", name, exc, delay)
            except Exception as exc:
                # Not log.exception: a database error's message quotes its parameters.
                log.error("%s watcher failed; restarting from the stored cursor: %s", name,
                          failure(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0) if not self._progressed else self._retry
            self._progressed = False

    async def _follow(self) -> None:
        feed, tracker = self._feed, self._tracker
        cursor = await tracker.start_cursor(feed)
        if cursor is None:
            # First run: nothing can have been paid before the first invoice, which needs
            # this service; start at the node's tip.
            cursor = await self._follower.tip()
            await tracker.set_cursor(feed, cursor)
        if isinstance(self._follower, Restorable):
            await self._watchlist.refresh()
            await self._follower.restore(self._watchlist.highest_index)
        log.info("%s: following from height %d", feed.name, cursor.height)
        unconfirmed = await tracker.unconfirmed(feed)
        async for event in self._follower.follow(cursor, self._watchlist, unconfirmed):
            match event:
                case MatchPoint():
                    await self._watchlist.refresh()
                    continue
                case BlockConnected():
                    await tracker.block_connected(feed, event)
                case BlockDisconnected():
                    log.warning("%s: block %d left the main chain", feed.name,
                                event.block.height)
                    await tracker.block_disconnected(feed, event)
                case TransactionsDisconnected():
                    log.warning("%s: %d transactions left their blocks", feed.name,
                                len(event.txids))
                    await tracker.transactions_disconnected(feed, event)
                case MempoolSeen():
                    await tracker.mempool_seen(feed, event)
                case MempoolGone():
                    await tracker.mempool_gone(feed, event)
            self._progressed = True

    async def _record_catch_up(self, interval: float = 0.5) -> None:
        """Records what the follower reports while it catches up (and that it is done)
        with the feed's cursor, where /readyz, the console and `gateway doctor` of every
        instance read it. The first record clears what a stopped process left (a feed
        without a cursor yet has nothing to clear)."""
        assert isinstance(self._follower, Restorable)
        recorded: object = ()  # nothing recorded yet
        while True:
            state = self._follower.catching_up
            said = (state.describe(), state.since) if state is not None else None
            if said != recorded:
                try:
                    await self._tracker.record_catch_up(self._feed, *(said or (None, None)))
                    recorded = said
                except Exception as exc:  # the next round tries again
                    log.warning("%s: catch-up state not recorded (%s)", self._feed.name,
                                type(exc).__name__)
            await asyncio.sleep(interval)
