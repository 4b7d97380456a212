"""The chain interface: small Protocols, plain frozen dataclasses across them.

A chain *family* (UTXO, EVM, Monero, a fake in tests) is one package under `chains/` that
exposes a `Family`: its configuration model, and a builder that turns the configured
coins of its kind into `Follower`s, one per node. A follower may serve several coins
(ETH and its tokens in one pass over each block) and defines the *address space* its
coins draw derivation indexes from (one xpub, one view-only wallet)."""

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class BlockRef:
    height: int
    hash: str


@dataclass(frozen=True)
class Destination:
    """Where a customer pays: its index in the address space, the address text and the
    bytes payments are matched on. The payment URI is the follower's to build."""

    index: int
    address: str
    match_key: bytes  # scriptPubKey for UTXO chains


@dataclass(frozen=True)
class Lock:
    """A payment that may not count before a height or a time (Monero `unlock_time`,
    a UTXO `nLockTime` on an unconfirmed transaction)."""

    height: int | None = None
    time: datetime | None = None


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
    lock: Lock | None = None


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


@dataclass(frozen=True)
class TransactionsDisconnected:
    """A reorg the node reports by transaction ids only (a wallet RPC that knows no block
    hashes): these transactions are no longer in a block; they may come back."""

    txids: tuple[str, ...]


@dataclass(frozen=True)
class MatchPoint:
    """Yielded by a follower right before it matches a block or a mempool batch against
    the watched set: the follower loop brings that set up to date, then resumes it. So no
    adapter refreshes anything itself, and an invoice created a moment ago (on any
    instance) is never missed."""


MATCH_POINT = MatchPoint()

ChainEvent = (BlockConnected | BlockDisconnected | TransactionsDisconnected | MempoolSeen
              | MempoolGone)
FollowItem = ChainEvent | MatchPoint


class Watched(Protocol):
    """The set of match keys to look for, as the follower loop last refreshed it."""

    def __contains__(self, match_key: object) -> bool: ...


class Watchlist(Watched, Protocol):
    """A watched set that can bring itself up to date (the follower loop calls it)."""

    async def refresh(self) -> None: ...

    @property
    def highest_index(self) -> int:
        """The highest index of the address space handed out to an invoice as of the last
        refresh (-1: none): what a `Restorable` follower's node must know."""
        ...


@dataclass(frozen=True)
class OutputLookup:
    """What the node says about one output, for reconciliation."""

    known: bool  # the node has the transaction (in the given block, or in its mempool)
    block: BlockRef | None = None  # the block asked about, or None for the mempool
    in_main_chain: bool = False  # that block is on the node's main chain
    confirmations: int = 0
    match_key: bytes | None = None  # None: the transaction has no such output
    amount: int | None = None


@runtime_checkable
class Auditable(Protocol):
    """Read-only questions a reconciliation asks a node, beyond following the chain."""

    async def lookup(self, txid: str, index: int, block_hash: str | None) -> OutputLookup:
        """The output as found in `block_hash`, or in the mempool when None."""
        ...

    async def heights_between(self, start: datetime, end: datetime) -> range:
        """Heights of main-chain blocks that may carry transactions of that period."""
        ...

    async def scan(self, height: int, watched: Watched) -> BlockConnected:
        """The main-chain block at `height`, with its outputs that pay a watched key."""
        ...


@runtime_checkable
class HasAssets(Protocol):
    """A follower whose coins are assets on one chain (ERC-20 tokens): names each one's
    contract, "" for the native coin. Finance exports show it."""

    def asset(self, coin: str) -> str: ...


class ChainError(Exception):
    """The node could not be reached or answered with an error."""


class NodeProblem(ChainError):
    """The node answered, and what it said is why it cannot be used as configured: a
    wallet holding a spend key, a node on another network or chain id, a node still
    syncing. The message names that reason in an operator's words and holds no secret:
    /readyz, the watcher's log and `gateway doctor` show it (`describe_failure`)."""


class RestoreNeeded(ChainError):
    """Raised by a `Restorable` follower while following when its node lost the state kept
    outside our database (a wallet-rpc restarted without its wallet file): the follower
    loop asks the database for the highest index again and calls `restore` at once."""


def wrong_network(reported: str, expected: str) -> str:
    """The words for a node on another network than the configuration's."""
    return (f"is on {reported!r} but the configuration says {expected!r}: payments would "
            "never be seen")


def describe_failure(exc: BaseException) -> str:
    """Why a node cannot be used, in the words /readyz, the watcher's log and `gateway
    doctor` share: the reason when the node told one, else that it cannot be reached."""
    if isinstance(exc, NodeProblem):
        return str(exc)
    return f"unreachable ({type(exc).__name__})"


@dataclass(frozen=True)
class CatchUp:
    """What a `Restorable` follower is doing while its node catches up: restoring the
    destinations our database handed out into the node's own state, then rescanning the
    chain from a height. Until it is done, payments to those destinations cannot be seen."""

    what: str  # the destinations, plural: "subaddresses"
    restoring: int  # how many the node is given in all
    restored: int  # given so far
    rescan_from: int  # the height the node scans from once they are restored
    tip: int  # the node's tip when the catch-up started
    since: datetime

    @property
    def rescanning(self) -> bool:
        return self.restored >= self.restoring

    def describe(self) -> str:
        if self.rescanning:
            return (f"rescanning from height {self.rescan_from} (node at height {self.tip}) "
                    f"after restoring {self.restoring} {self.what}")
        return (f"restoring {self.what} ({self.restored} of {self.restoring}), then "
                f"rescanning from height {self.rescan_from} (node at height {self.tip})")


@runtime_checkable
class Restorable(Protocol):
    """A follower whose watching depends on state kept outside our database: a Monero
    view-only wallet scans only the subaddresses created in it (and a lookahead past
    them), so a wallet recreated from its keys must be given every one ever handed out
    before it scans, then rescan what it scanned without them.

    The follower loop calls `restore` before each follow with the highest index of the
    address space the database gave an invoice; it returns once the node's state covers
    it. A follower that finds that state lost while following raises `RestoreNeeded`.
    `catching_up` says what it is doing meanwhile (the follower loop records it for every
    instance, /readyz and `gateway doctor`); None when caught up."""

    async def restore(self, highest_index: int) -> None: ...

    @property
    def catching_up(self) -> CatchUp | None: ...


@dataclass(frozen=True)
class NodeDiagnosis:
    """What `gateway doctor` asks a node: is it the configured network, is it in sync, and
    does it accept the first address the configured extended public key derives."""

    height: int
    synced: bool
    sync_detail: str  # e.g. "headers 1203, blocks 1203, initial download done"
    network_expected: str  # the configuration's network, in the node's words
    network_reported: str
    first_address: str
    # The node accepts it and agrees on its script; None: the family checks its addresses
    # its own way, in `checks` (an EVM node has nothing to check one against; a Monero
    # wallet's primary address is compared with the configured one).
    address_valid: bool | None
    # Further checks of the family's own, each (ok, what was found): an EVM token's
    # contract and decimals, a Monero wallet being view-only.
    checks: tuple[tuple[bool, str], ...] = ()

    @property
    def network_ok(self) -> bool:
        return self.network_expected == self.network_reported


@runtime_checkable
class StartupCheckable(Protocol):
    """A follower whose node can show that the configuration itself is wrong (an EVM
    token whose contract says other decimals than configured): `gateway serve` asks
    before it starts and refuses to start on such a finding."""

    async def check_configuration(self) -> None:
        """Raises NodeProblem naming what is wrong; ChainError when the node cannot be
        asked (the start goes on, and the follower checks again when it answers)."""
        ...


@runtime_checkable
class Diagnosable(Protocol):
    """A follower that can check its node for `gateway doctor` (read-only calls)."""

    async def diagnose(self) -> NodeDiagnosis:
        """Raises ChainError when the node cannot be reached."""
        ...


class Follower(Protocol):
    """One node: follows its chain for one or more coins."""

    @property
    def coins(self) -> tuple[str, ...]: ...

    @property
    def feed(self) -> str:
        """Names the node's cursor (today the coin code of a one-coin follower)."""
        ...

    @property
    def address_space(self) -> str:
        """What must never hand out one address twice: coins sharing a key share it."""
        ...

    def decimals(self, coin: str) -> int: ...

    async def allocate(self, indexes: Sequence[int]) -> list[Destination]:
        """The destinations at these indexes of the address space; may ask the node or
        wallet (a Monero subaddress must be created in the wallet to be scanned)."""
        ...

    def payment_uri(self, destination: Destination, coin: str, base_units: int) -> str:
        """BIP21, EIP-681, `monero:`: the family's own URI, from base units."""
        ...

    async def tip(self) -> BlockRef: ...

    def follow(
        self,
        cursor: BlockRef,
        watched: Watched,
        unconfirmed: Iterable[str] = (),
    ) -> AsyncIterator[FollowItem]:
        """Events from `cursor` (already processed) onwards, forever, with a `MatchPoint`
        before each match. `unconfirmed` names watched transactions known to be in the
        mempool, so a replacement that happened while we were down is still reported."""
        ...

    async def aclose(self) -> None: ...


class CoinSettings(BaseModel):
    """What every family's coin configuration has; each family extends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    confirmations: int | None = Field(None, ge=1, le=1000)
    # The asset whose price the rate sources are asked for: USDC-BASE is priced as USDC.
    # None: the coin's own code.
    asset: str | None = Field(None, pattern=r"^[A-Z][A-Z0-9]{0,15}$")


@dataclass(frozen=True)
class Family:
    """A registry entry: `kind` in a coin's configuration picks it."""

    kind: str
    settings: type[CoinSettings]
    # All configured coins of this kind (code -> validated settings) -> one follower per
    # node. Performs no I/O.
    build: Callable[[Mapping[str, Any]], list[Follower]]
    default_confirmations: Mapping[str, int] = field(default_factory=dict)
    fallback_confirmations: int = 12
    description: str = ""
    # `[networks.NAME]` (optional): one network's table -> the raw coin tables it stands
    # for, code -> (where in the file, table), each then validated by `settings`. Raises
    # ValueError("<key>: <problem>") with the key relative to the network's table.
    network_coins: Callable[[str, Mapping[str, Any]],
                            dict[str, tuple[str, dict[str, Any]]]] | None = None
    # Problems across the configured coins of this kind (two coins on one contract, a
    # token whose node is not configured): one line each, naming the coins. No I/O.
    check: Callable[[Mapping[str, Any]], list[str]] | None = None


@dataclass(frozen=True)
class NetworkFacts:
    """What a customer is told about the network a coin is paid on: its name, its usual
    block interval (to say honestly how long settlement takes) and when a payment is
    final: after `required` blocks ("depth"), or once the node's block tag of that name
    ("safe", "finalized") has reached its block. From the family and its configuration,
    never from tables elsewhere."""

    name: str  # "Base", "Litecoin"
    block_seconds: float | None = None
    finality: str = "depth"
    chain_id: int | None = None  # an EVM network's


@runtime_checkable
class Described(Protocol):
    """A follower that says which network each of its coins is paid on."""

    def network_facts(self, coin: str) -> NetworkFacts: ...
