from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chains.base import BlockRef
from chains.watchset import KeySet
from gateway.adapters.db.tables import chain_cursors, invoices


class SqlCursors:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, feed: str) -> BlockRef | None:
        row = (
            await self._conn.execute(select(chain_cursors).where(chain_cursors.c.feed == feed))
        ).first()
        return BlockRef(row.height, row.hash) if row else None

    async def set(self, feed: str, block: BlockRef, now: datetime) -> None:
        result = await self._conn.execute(
            update(chain_cursors)
            .where(chain_cursors.c.feed == feed)
            .values(height=block.height, hash=block.hash, updated_at=now)
        )
        if not result.rowcount:
            await self._conn.execute(
                insert(chain_cursors).values(
                    feed=feed, height=block.height, hash=block.hash, updated_at=now
                )
            )


class SqlWatchlist:
    """Implements `chains.base.Watchlist`: every address ever handed out in an address
    space (for any of its coins).

    Derivation indexes are allocated in the same transaction as the invoice, so committed
    indexes form a gap-free prefix; a refresh reads only from the first index not yet seen,
    which also catches an index whose transaction committed after a later one."""

    def __init__(self, engine: AsyncEngine, space: str) -> None:
        self._engine = engine
        self._space = space
        self._keys = KeySet()  # compact: a 64-bit hash per key (chains/watchset.py)
        self._seen_above: set[int] = set()
        self._low = 0  # every index below this is in _keys

    async def refresh(self) -> None:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(invoices.c.derivation_index, invoices.c.match_key).where(
                    invoices.c.address_space == self._space,
                    invoices.c.derivation_index >= self._low,
                )
            )
            for index, key in rows:
                self._keys.add(bytes(key))
                self._seen_above.add(index)
        while self._low in self._seen_above:
            self._seen_above.discard(self._low)
            self._low += 1

    def __contains__(self, match_key: object) -> bool:
        return match_key in self._keys

    def __len__(self) -> int:
        return len(self._keys)
