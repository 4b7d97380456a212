"""The chain interface: one small Protocol, plain frozen dataclasses across it."""

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class BlockRef:
    height: int
    hash: str


@dataclass(frozen=True)
class Destination:
    """Where a customer pays: address text, the bytes we match outputs on, and a URI."""

    index: int
    address: str
    match_key: bytes  # scriptPubKey for UTXO chains
    uri_scheme: str

    def payment_uri(self, amount: str) -> str:
        return f"{self.uri_scheme}:{self.address}?amount={amount}"


@dataclass(frozen=True)
class Observed:
    coin: str
    txid: str
    index: int
    match_key: bytes
    amount: int  # base units
    block: BlockRef | None  # None while in the mempool
    # When the operator's node itself first had the transaction in its mempool (it keeps
    # following the chain while the gateway is down); None when it cannot say.
    first_seen: datetime | None = None


@dataclass(frozen=True)
class BlockConnected:
    block: BlockRef
    parent_hash: str
    time: datetime  # the block's own timestamp (header `time`, UTC), as its miner set it
    payments: tuple[Observed, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class BlockDisconnected:
    """A block left the main chain (reorg); emitted newest first."""

    block: BlockRef
    parent_hash: str
    txids: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class MempoolSeen:
    payments: tuple[Observed, ...]


@dataclass(frozen=True)
class MempoolGone:
    """Watched transactions that left the mempool without being mined (replaced, evicted)."""

    txids: tuple[str, ...]


ChainEvent = BlockConnected | BlockDisconnected | MempoolSeen | MempoolGone


class Watchlist(Protocol):
    """The set of match keys to look for; refreshed before each block or mempool batch so
    an invoice created a moment ago (on any instance) is never missed."""

    async def refresh(self) -> None: ...

    def __contains__(self, match_key: object) -> bool: ...


@dataclass(frozen=True)
class OutputLookup:
    """What the node says about one output, for reconciliation."""

    known: bool  # the node has the transaction (in the given block, or in its mempool)
    block: BlockRef | None = None  # the block asked about, or None for the mempool
    in_main_chain: bool = False  # that block is on the node's main chain
    confirmations: int = 0
    match_key: bytes | None = None  # None: the transaction has no such output
    amount: int | None = None


class Auditable(Protocol):
    """Read-only questions a reconciliation asks a node, beyond following the chain."""

    coin: str

    async def lookup(self, txid: str, index: int, block_hash: str | None) -> OutputLookup:
        """The output as found in `block_hash`, or in the mempool when None."""
        ...

    async def heights_between(self, start: datetime, end: datetime) -> range:
        """Heights of main-chain blocks that may carry transactions of that period."""
        ...

    async def scan(self, height: int, watched: Watchlist) -> BlockConnected:
        """The main-chain block at `height`, with its outputs that pay a watched key."""
        ...


class ChainError(Exception):
    """The node could not be reached or answered with an error."""


class Chain(Protocol):
    coin: str
    decimals: int

    def derive(self, index: int) -> Destination: ...

    async def tip(self) -> BlockRef: ...

    def follow(
        self,
        cursor: BlockRef,
        watched: Watchlist,
        unconfirmed: Iterable[str] = (),
    ) -> AsyncIterator[ChainEvent]:
        """Events from `cursor` (already processed) onwards, forever. `unconfirmed` names
        watched transactions known to be in the mempool, so a replacement that happened
        while we were down is still reported as gone."""
        ...

    async def aclose(self) -> None: ...
