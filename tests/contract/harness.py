"""What the contract suite needs around a follower: a watched set and a stream that does
the follower loop's part (refreshing the set at each MatchPoint)."""

import asyncio
from collections.abc import AsyncIterator

from chains.base import (
    BlockConnected,
    BlockRef,
    ChainEvent,
    Follower,
    FollowItem,
    MatchPoint,
)
from chains.watchset import KeySet


class SetWatchlist:
    """The gateway's watched set in memory: a `KeySet`, as `SqlWatchlist` holds."""

    def __init__(self) -> None:
        self.keys = KeySet()
        self.pending: set[bytes] = set()  # become visible at the next refresh
        self.refreshes = 0

    async def refresh(self) -> None:
        self.refreshes += 1
        self.keys.update(self.pending)
        self.pending.clear()

    def __contains__(self, key: object) -> bool:
        return key in self.keys


class Stream:
    def __init__(self, follower: Follower, cursor: BlockRef, watched: SetWatchlist,
                 unconfirmed: tuple[str, ...] = ()) -> None:
        self._gen: AsyncIterator[FollowItem] = follower.follow(cursor, watched, unconfirmed)
        self._watched = watched
        self.log: list[ChainEvent] = []

    async def next_event(self) -> ChainEvent:
        while True:
            item = await anext(self._gen)
            if isinstance(item, MatchPoint):
                await self._watched.refresh()
                continue
            self.log.append(item)
            return item

    async def until(self, kind: type, timeout: float = 15.0) -> ChainEvent:
        async def scan() -> ChainEvent:
            while True:
                event = await self.next_event()
                if isinstance(event, kind):
                    return event
        return await asyncio.wait_for(scan(), timeout)

    async def until_block(self, height: int, timeout: float = 15.0) -> BlockConnected:
        while True:
            event = await self.until(BlockConnected, timeout)
            assert isinstance(event, BlockConnected)
            if event.block.height >= height:
                return event

    async def aclose(self) -> None:
        await self._gen.aclose()  # type: ignore[attr-defined]
