"""The chain interface: one small Protocol, plain frozen dataclasses across it."""

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class BlockConnected:
    block: BlockRef
    parent_hash: str
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
