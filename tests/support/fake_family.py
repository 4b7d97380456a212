"""An in-memory chain family (`kind = "fake"`), registered only in tests: deterministic,
no node, fast. Several coins on one `node` share one follower, one cursor and one address
space (as ETH and its tokens will); payments carry the coin they are in.

Register it through the registry like any other family: `[families] extra =
["tests.support.fake_family"]` (or `gateway.families.register(FAMILY)`). Nodes live in
this process (`node(name)`), so tests drive them directly: pay, mine, reorg, replace,
lock, take down and bring back.

Refunds (chains.refunds): the follower is `Refundable` (deterministic instructions, a
`fake:` URI) and `TxKeyCheckable`. With `refunds_watchable = false` it plays a family
that cannot watch someone else's address (as Monero): `refund_match_key` is None and a
refund is proven by a tx key (`FakeNode.pay_with_key`). `FakeNode.refund_refusal` makes
`prepare_refund` refuse with that reason."""

import asyncio
import hashlib
import itertools
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from chains.base import (
    MATCH_POINT,
    BlockConnected,
    BlockDisconnected,
    BlockRef,
    ChainError,
    CoinSettings,
    Destination,
    Family,
    Follower,
    FollowItem,
    Lock,
    MempoolGone,
    MempoolSeen,
    Observed,
    OutputLookup,
    Watched,
)
from chains.refunds import (
    BadRefundAddress,
    CannotPrepare,
    RefundInstructions,
    Spendable,
    TxKeyCheck,
)


@dataclass(frozen=True)
class Output:
    coin: str
    match_key: bytes
    amount: int


@dataclass
class Tx:
    txid: str
    outputs: tuple[Output, ...]
    lock: Lock | None = None
    entered: datetime | None = None  # when the node's mempool took it in


@dataclass
class Block:
    ref: BlockRef
    parent: str
    time: datetime
    txs: list[Tx] = field(default_factory=list)


class FakeNode:
    """A chain in memory: a main chain of blocks, a mempool, and the blocks that left."""

    def __init__(self, name: str, clock: Any = None) -> None:
        self.name = name
        self.clock = clock or (lambda: datetime.now(UTC))
        self.up = True
        self.calls = 0
        self._ids = itertools.count(1)
        genesis = Block(BlockRef(0, self._hash()), "", self.clock())
        self.chain: list[Block] = [genesis]
        self.stale: dict[str, Block] = {}
        self.mempool: dict[str, Tx] = {}
        self.replaced: set[str] = set()
        self.tx_keys: dict[str, str] = {}  # txid -> the tx key proving its outputs
        self.refund_refusal: str | None = None  # prepare_refund raises CannotPrepare(it)

    def _hash(self) -> str:
        return hashlib.sha256(f"{self.name}:{next(self._ids)}".encode()).hexdigest()

    def check(self) -> None:
        self.calls += 1
        if not self.up:
            raise ChainError(f"fake node {self.name}: unreachable")

    # -- what a test does to the node ------------------------------------------------------
    def pay(self, outputs: Iterable[tuple[str, bytes, int]], lock: Lock | None = None) -> str:
        txid = self._hash()
        self.mempool[txid] = Tx(txid, tuple(Output(*o) for o in outputs), lock, self.clock())
        return txid

    def pay_with_key(self, outputs: Iterable[tuple[str, bytes, int]]) -> tuple[str, str]:
        """A payment whose outputs a tx key proves (as Monero's): (txid, tx key)."""
        txid = self.pay(outputs)
        self.tx_keys[txid] = hashlib.sha256(f"tx-key:{txid}".encode()).hexdigest()
        return txid, self.tx_keys[txid]

    def find(self, txid: str) -> tuple[Tx, Block | None] | None:
        """The transaction and its main-chain block (None: in the mempool)."""
        if txid in self.mempool:
            return self.mempool[txid], None
        for b in self.chain:
            for tx in b.txs:
                if tx.txid == txid:
                    return tx, b
        return None

    def mine(self, blocks: int = 1, txids: Sequence[str] | None = None) -> list[str]:
        """Mine blocks; the first takes the whole mempool (or just `txids`)."""
        hashes = []
        for n in range(blocks):
            tip = self.chain[-1]
            chosen = [] if n else [t for t in self.mempool.values()
                                   if txids is None or t.txid in txids]
            for tx in chosen:
                del self.mempool[tx.txid]
            block = Block(BlockRef(tip.ref.height + 1, self._hash()), tip.ref.hash,
                          self.clock(), chosen)
            self.chain.append(block)
            hashes.append(block.ref.hash)
        return hashes

    def invalidate(self, block_hash: str) -> None:
        """Like `invalidateblock`: that block and those after it leave the main chain;
        their transactions go back to the mempool."""
        at = next(i for i, b in enumerate(self.chain) if b.ref.hash == block_hash)
        for block in self.chain[at:]:
            self.stale[block.ref.hash] = block
            for tx in block.txs:
                self.mempool[tx.txid] = tx
        del self.chain[at:]

    def replace(self, txid: str) -> str:
        """Like `bumpfee`: the same outputs in a new transaction; the old one is gone."""
        old = self.mempool.pop(txid)
        self.replaced.add(txid)
        new = self._hash()
        self.mempool[new] = Tx(new, old.outputs, old.lock, self.clock())
        return new

    def drop(self, txid: str) -> None:
        self.mempool.pop(txid)

    @property
    def tip(self) -> BlockRef:
        return self.chain[-1].ref

    def block(self, block_hash: str) -> Block | None:
        for b in self.chain:
            if b.ref.hash == block_hash:
                return b
        return self.stale.get(block_hash)


NODES: dict[str, FakeNode] = {}


def node(name: str) -> FakeNode:
    """The fake node of that name in this process (created on first use)."""
    if name not in NODES:
        NODES[name] = FakeNode(name)
    return NODES[name]


def reset(name: str) -> FakeNode:
    NODES[name] = FakeNode(name)
    return NODES[name]


class FakeSettings(CoinSettings):
    kind: Literal["fake"]
    node: str = "fake"
    seed: str = "fake-seed"  # plays the xpub: one seed per node, one address space
    decimals: int = Field(8, ge=0, le=30)
    poll_interval_seconds: float = Field(0.01, ge=0.001)
    # False: a refund address cannot be watched (as Monero); a tx key proves the refund.
    refunds_watchable: bool = True


def fake_address_key(address: str) -> bytes:
    """The match key of a fake address ("fake1" and 40 hex digits, any case)."""
    text = address.strip().lower()
    body = text.removeprefix("fake1")
    if not text.startswith("fake1") or len(body) != 40 \
            or any(c not in "0123456789abcdef" for c in body):
        raise BadRefundAddress("this is not a fake address (fake1 and 40 hex digits)")
    return bytes.fromhex(body)


def fake_destination(seed: str, index: int) -> Destination:
    key = hashlib.sha256(f"{seed}:{index}".encode()).digest()[:20]
    return Destination(index, "fake1" + key.hex(), key)


class FakeFollower:
    def __init__(self, name: str, coins: Mapping[str, FakeSettings]) -> None:
        self._node_name = name
        self._coins = dict(coins)
        seeds = {c.seed for c in coins.values()}
        if len(seeds) != 1:
            raise ValueError(f"coins on fake node {name} must share one seed")
        self._seed = seeds.pop()
        self._poll = min(c.poll_interval_seconds for c in coins.values())
        self._watchable = all(c.refunds_watchable for c in coins.values())
        self.allocations: list[tuple[int, ...]] = []
        self.passes = 0  # full passes over the node, for tests waiting for quiet

    @property
    def node(self) -> FakeNode:
        return node(self._node_name)

    @property
    def coins(self) -> tuple[str, ...]:
        return tuple(sorted(self._coins))

    @property
    def feed(self) -> str:
        return f"fake:{self._node_name}"

    @property
    def address_space(self) -> str:
        return f"fake:{self._seed}"

    def decimals(self, coin: str) -> int:
        return self._coins[coin].decimals

    async def allocate(self, indexes: Sequence[int]) -> list[Destination]:
        await asyncio.sleep(0)  # a real family may ask its wallet here
        self.allocations.append(tuple(indexes))
        return [fake_destination(self._seed, i) for i in indexes]

    def payment_uri(self, destination: Destination, coin: str, base_units: int) -> str:
        return f"fake:{destination.address}?coin={coin}&value={base_units}"

    async def tip(self) -> BlockRef:
        self.node.check()
        return self.node.tip

    # -- refunds (Refundable, TxKeyCheckable) --------------------------------------------
    def check_address(self, coin: str, address: str) -> str:
        if coin not in self._coins:
            raise BadRefundAddress(f"{coin} is not paid through this node")
        return "fake1" + fake_address_key(address).hex()

    def refund_match_key(self, coin: str, address: str) -> bytes | None:
        key = fake_address_key(self.check_address(coin, address))
        return key if self._watchable else None

    async def prepare_refund(self, coin: str, address: str, amount: int,
                             spendable: Sequence[Spendable], change_index: int,
                             ) -> RefundInstructions:
        """Deterministic: the URI, and the largest spendables that cover the amount (no
        fee, no change; none when they do not cover it)."""
        to = self.check_address(coin, address)
        self.node.check()
        if self.node.refund_refusal is not None:
            raise CannotPrepare(self.node.refund_refusal)
        if amount <= 0:
            raise CannotPrepare("a refund must be more than zero")
        chosen: list[Spendable] = []
        for s in sorted(spendable, key=lambda s: (-s.amount, s.txid, s.output_index)):
            if sum(c.amount for c in chosen) >= amount:
                break
            chosen.append(s)
        covered = sum(c.amount for c in chosen) >= amount
        return RefundInstructions(
            coin=coin, address=to, amount=amount,
            uri=f"fake:{to}?coin={coin}&value={amount}",
            spends=tuple((c.txid, c.output_index) for c in chosen) if covered else ())

    async def check_tx_key(self, txid: str, tx_key: str, address: str) -> TxKeyCheck:
        n = self.node
        n.check()
        key = fake_address_key(address)
        found = n.find(txid.strip().lower())
        if found is None:
            raise CannotPrepare("the node does not know this txid")
        tx, block = found
        if n.tx_keys.get(tx.txid) != tx_key.strip().lower():
            raise CannotPrepare("this tx key does not prove any payment to that address")
        received = sum(o.amount for o in tx.outputs if o.match_key == key)
        if not received:
            raise CannotPrepare("this tx key does not prove any payment to that address")
        confirmations = 0 if block is None else n.tip.height - block.ref.height + 1
        return TxKeyCheck(received, confirmations, block is None)

    async def aclose(self) -> None:
        pass

    def _match(self, tx: Tx, watched: Watched, block: BlockRef | None) -> list[Observed]:
        # The node's own mempool sighting counts as first seen only for a mempool match,
        # as with the UTXO family.
        entered = tx.entered if block is None else None
        return [Observed(o.coin, tx.txid, i, o.match_key, o.amount, block, entered, tx.lock)
                for i, o in enumerate(tx.outputs)
                if o.coin in self._coins and o.match_key in watched]

    async def follow(self, cursor: BlockRef, watched: Watched,
                     unconfirmed: Iterable[str] = ()) -> AsyncIterator[FollowItem]:
        pending: set[str] = set(unconfirmed)
        inspected: set[str] = set()
        while True:
            n = self.node
            n.check()
            mempool = set(n.mempool)
            mined: set[str] = set()
            reorged = False
            while not (cursor.height < len(n.chain)
                       and n.chain[cursor.height].ref.hash == cursor.hash):
                stale = n.block(cursor.hash)
                if stale is None:
                    raise ChainError(f"fake node {n.name}: unknown block {cursor.hash}")
                yield MATCH_POINT
                n.check()
                txids = tuple(sorted({o.txid for tx in stale.txs
                                      for o in self._match(tx, watched, None)}))
                pending.update(txids)
                reorged = True
                yield BlockDisconnected(cursor, stale.parent, txids)
                cursor = BlockRef(cursor.height - 1, stale.parent)
            while cursor.height < n.tip.height:
                block = n.chain[cursor.height + 1]
                if block.parent != cursor.hash:
                    break
                yield MATCH_POINT
                n.check()
                found = [o for tx in block.txs for o in self._match(tx, watched, block.ref)]
                mined.update(tx.txid for tx in block.txs)
                pending.difference_update(mined)
                yield BlockConnected(block.ref, cursor.hash, block.time, tuple(found))
                cursor = block.ref
            fresh = [t for t in sorted(mempool) if t not in inspected and t not in mined]
            if fresh:
                yield MATCH_POINT
                seen = [o for t in fresh if t in n.mempool
                        for o in self._match(n.mempool[t], watched, None)]
                inspected.update(fresh)
                if seen:
                    pending.update(o.txid for o in seen)
                    yield MempoolSeen(tuple(seen))
            inspected &= mempool
            if not reorged:
                gone = tuple(sorted(pending - mempool - mined))
                if gone:
                    pending.difference_update(gone)
                    yield MempoolGone(gone)
            self.passes += 1
            await asyncio.sleep(self._poll)

    # -- Auditable -----------------------------------------------------------------------
    async def lookup(self, txid: str, index: int, block_hash: str | None) -> OutputLookup:
        n = self.node
        n.check()
        if block_hash is None:
            tx = n.mempool.get(txid)
            ref = None
            in_main, confs = False, 0
        else:
            block = n.block(block_hash)
            tx = next((t for t in block.txs if t.txid == txid), None) if block else None
            ref = block.ref if block else None
            in_main = block is not None and block_hash not in n.stale
            confs = n.tip.height - block.ref.height + 1 if block and in_main else 0
        if tx is None:
            return OutputLookup(False, ref, in_main, confs)
        if index >= len(tx.outputs):
            return OutputLookup(True, ref, in_main, confs)
        out = tx.outputs[index]
        return OutputLookup(True, ref, in_main, confs, out.match_key, out.amount)

    async def heights_between(self, start: datetime, end: datetime) -> range:
        n = self.node
        n.check()
        heights = [b.ref.height for b in n.chain
                   if start - timedelta(hours=2) <= b.time <= end + timedelta(hours=2)]
        return range(heights[0], heights[-1] + 1) if heights else range(0)

    async def scan(self, height: int, watched: Watched) -> BlockConnected:
        n = self.node
        n.check()
        block = n.chain[height]
        found = [o for tx in block.txs for o in self._match(tx, watched, block.ref)]
        return BlockConnected(block.ref, block.parent, block.time, tuple(found))


def build(coins: Mapping[str, Any]) -> list[Follower]:
    by_node: dict[str, dict[str, FakeSettings]] = {}
    for code, cfg in coins.items():
        assert isinstance(cfg, FakeSettings)
        by_node.setdefault(cfg.node, {})[code] = cfg
    return [FakeFollower(name, group) for name, group in sorted(by_node.items())]


FAMILY = Family(kind="fake", settings=FakeSettings, build=build,
                fallback_confirmations=2, description="in-memory chain for tests")
