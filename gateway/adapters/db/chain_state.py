from datetime import datetime

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chains.base import BlockRef
from chains.watchset import KeySet
from gateway.adapters.db.engine import read_transaction
from gateway.adapters.db.refund_watches import match_key_of
from gateway.adapters.db.tables import chain_cursors, invoices, refund_watches
from gateway.adapters.fields import FieldCipher
from gateway.domain.refund_chain import ChainState

# Built once (every invoice creation reads its feed's tip): no building or compiling.
_CURSOR = select(chain_cursors).where(chain_cursors.c.feed == bindparam("feed"))


class SqlCursors:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self.changed: set[str] = set()  # feeds whose cursor this unit moved

    async def get(self, feed: str) -> BlockRef | None:
        row = (await self._conn.execute(_CURSOR, {"feed": feed})).first()
        return BlockRef(row.height, row.hash) if row else None

    async def set(self, feed: str, block: BlockRef, now: datetime) -> None:
        self.changed.add(feed)
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


    async def set_catch_up(self, feed: str, state: str | None,
                           since: datetime | None) -> bool:
        result = await self._conn.execute(
            update(chain_cursors).where(chain_cursors.c.feed == feed)
            .values(catch_up=state, catch_up_since=since))
        return bool(result.rowcount)


class SqlWatchlist:
    """Implements `chains.base.Watchlist`: every address ever handed out in an address
    space (for any of its coins).

    Invoices commit in another order than their indexes were allocated, and an index whose
    invoice failed to commit is never used (PostgreSQL allocates apart from the invoice's
    transaction). A refresh reads the indexes above the highest seen and, by name, the
    ones below it not seen yet, so a late commit is caught and a gap costs one value in a
    list, not a re-read of everything above it."""

    MAX_MISSING = 10_000  # the oldest unused indexes are forgotten beyond this

    def __init__(self, engine: AsyncEngine, space: str,
                 cipher: FieldCipher | None = None) -> None:
        self._engine = engine
        self._space = space
        self._cipher = cipher  # to read approved refunds' addresses (none: not watched)
        self._keys = KeySet()  # compact: a 64-bit hash per key (chains/watchset.py)
        self._top = -1  # the highest index seen
        self._missing: set[int] = set()  # below _top, not seen (yet)

    async def refresh(self) -> None:
        i = invoices.c
        wanted = i.derivation_index > self._top
        if self._missing:
            wanted = or_(wanted, i.derivation_index.in_(sorted(self._missing)))
        # The first refresh reads every index of the space: off the loop.
        async with read_transaction(self._engine, small=False) as conn:
            rows = (await conn.execute(
                select(i.derivation_index, i.match_key).where(
                    i.address_space == self._space, wanted)
                .order_by(i.derivation_index)  # ascending: only true gaps are missing
            )).all()
            # A refund's address is watched like our own from its approval until it is
            # completed. They are few: all of them each time, so one that committed
            # after a later one is never missed.
            refunds = [] if self._cipher is None else (await conn.execute(
                select(refund_watches.c.refund_id, refund_watches.c.match_key_ct).where(
                    refund_watches.c.address_space == self._space,
                    refund_watches.c.state != ChainState.COMPLETED.value))).all()
        for row in refunds:
            assert self._cipher is not None
            key = match_key_of(self._cipher, row)
            if key:
                self._keys.add(key)
        top = self._top
        for index, key in rows:
            self._keys.add(bytes(key))
            self._missing.discard(index)
            if index > top:
                self._missing.update(range(top + 1, index))
                top = index
        self._top = top
        if len(self._missing) > self.MAX_MISSING:
            for index in sorted(self._missing)[: len(self._missing) - self.MAX_MISSING]:
                self._missing.discard(index)

    @property
    def highest_index(self) -> int:
        return self._top

    @property
    def keyset(self) -> KeySet:
        """The set itself, for scanners that search a whole block at once."""
        return self._keys

    def __contains__(self, match_key: object) -> bool:
        return match_key in self._keys

    def __len__(self) -> int:
        return len(self._keys)
