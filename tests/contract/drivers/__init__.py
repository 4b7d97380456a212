"""One driver per chain family: a small class that knows how to fund, pay, mine, reorg
and replace on its node. Adding a family means adding a driver here; the contract suite
(tests/contract/) is its definition of done."""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from chains.base import Destination, Follower


class Driver(Protocol):
    kind: str
    coin: str  # the coin the suite pays in
    follower: Follower  # built through the family registry

    def pay(self, destination: Destination, base_units: int, replaceable: bool = False
            ) -> str: ...

    def pay_many(self, destinations: Sequence[Destination], base_units: int) -> list[str]:
        """One payment to each destination, all before the next block."""
        ...

    def mine(self, blocks: int = 1) -> list[str]: ...

    def invalidate(self, block_hash: str) -> None:
        """That block and its successors leave the main chain; their transactions go
        back to the mempool."""
        ...

    def replace(self, txid: str) -> str:
        """Replace a replaceable payment by one with a higher fee; its txid."""
        ...

    def block_hash(self, height: int) -> str: ...

    def block_time(self, block_hash: str) -> datetime: ...

    def first_seen(self, txid: str) -> datetime | None:
        """What the follower must report as the node's own mempool sighting."""
        ...

    def check_destination(self, destination: Destination) -> None:
        """The node accepts the address and it matches the destination's key."""
        ...

    def expected_uri(self, destination: Destination, base_units: int) -> str: ...

    def customer_address(self) -> str:
        """A valid address of the node's network that is none of ours (a refund's)."""
        ...

    def denormalised(self, address: str) -> str:
        """The same address as a customer may type it (case, spaces): `check_address`
        gives `address` back."""
        ...

    def foreign_address(self) -> str:
        """Well-formed, but not payable here: another network's, a wrong checksum."""
        ...

    def coin_env(self, confirmations: int) -> dict[str, str]:
        """The configuration (GATEWAY_* variables) of the driver's coin, as its follower
        was built from."""
        ...

    async def stop_node(self) -> None: ...

    async def start_node(self) -> None: ...


KINDS = ("fake", "utxo", "evm", "monero")  # a driver for each registered family
