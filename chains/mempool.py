"""What a follow loop remembers about the mempool between its passes, shared by every
family. Pure bookkeeping, no I/O: each family's loop reads its node and tells this what
it found, in the order of a pass:

1. `start_pass` with a snapshot of the mempool, taken before any block is read: a
   transaction mined after the snapshot is then either still in it or in a block
   connected in this pass, so it is never mistaken for one that vanished;
2. `disconnected` / `connected` for each block walked back or connected;
3. `fresh` -> match those transactions -> `inspected_now`, `seen`;
4. `end_pass`, which names watched transactions that left the mempool unmined."""

from collections.abc import Iterable, Sequence

from chains.base import MempoolGone, MempoolSeen, Observed


class MempoolTracker:
    def __init__(self, unconfirmed: Iterable[str] = ()) -> None:
        # Watched txids believed to be in the mempool: seeded from the database, so a
        # replacement that happened while the gateway was down is still reported.
        self.pending: set[str] = set(unconfirmed)
        # Mempool txids already matched once: a transaction is matched when it first
        # appears, not again on every pass it stays.
        self.inspected: set[str] = set()
        self.pool: set[str] = set()
        self.mined: set[str] = set()
        self.reorged = False

    def start_pass(self, pool: Iterable[str]) -> None:
        self.pool = set(pool)
        self.mined = set()
        self.reorged = False

    def disconnected(self, txids: Iterable[str]) -> None:
        # A reorged block's payments may come back in the pool or in another block; until
        # a later pass tells, nothing is declared gone.
        self.pending.update(txids)
        self.reorged = True

    def connected(self, txids: Iterable[str]) -> None:
        self.mined.update(txids)
        self.pending.difference_update(self.mined)

    def drop(self, txids: Iterable[str]) -> None:
        """Take transactions out of this pass's snapshot (a Monero double spend: as good
        as gone, it will not be mined, or it replaces)."""
        self.pool.difference_update(txids)

    def fresh(self, candidates: Iterable[str]) -> list[str]:
        """The candidates (in their order) not matched before nor mined in this pass."""
        return [t for t in candidates if t not in self.inspected and t not in self.mined]

    def inspected_now(self, txids: Iterable[str]) -> None:
        self.inspected.update(txids)

    def seen(self, payments: Sequence[Observed]) -> MempoolSeen | None:
        if not payments:
            return None
        self.pending.update(o.txid for o in payments)
        return MempoolSeen(tuple(payments))

    def end_pass(self, caught_up: bool = True) -> MempoolGone | None:
        """Forget inspected transactions that left the snapshot, and name the pending ones
        that left it unmined. Not after a reorg in this pass (its transactions may be on
        their way back), nor when the pass did not reach the tip (`caught_up`): a
        transaction mined in a block not yet connected is not gone."""
        self.inspected &= self.pool
        if self.reorged or not caught_up:
            return None
        gone = tuple(sorted(self.pending - self.pool - self.mined))
        if not gone:
            return None
        self.pending.difference_update(gone)
        return MempoolGone(gone)
