"""One driver per chain family (or several: the EVM family on one network, and on two at
once): a small class that knows how to fund, pay, mine, reorg and replace on its node.
Adding a family means adding a driver module and one `DRIVERS` entry here, nothing else:
the contract suite (tests/contract/) is its definition of done."""

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chains.base import Destination, Follower


class Driver(Protocol):
    kind: str
    coin: str  # the coin the suite pays in
    asset: str  # what the coin is priced as (its code, or USDC for USDC-BASE)
    follower: Follower  # built through the family registry
    # Followers the same gateway runs beside it (another network of the family): built
    # from the same configuration, followed at once; the suite pays only on `follower`.
    others: Sequence[Follower]

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


@dataclass(frozen=True)
class DriverEntry:
    kind: str  # the family it drives
    factory: str  # "module:Class"; the class takes the fixtures below, in order
    fixtures: tuple[str, ...] = ()

    def make(self, fixture: Callable[[str], Any]) -> Driver:
        module, _, name = self.factory.partition(":")
        cls = getattr(importlib.import_module(module), name)
        found: Driver = cls(*(fixture(f) for f in self.fixtures))
        return found


# The contract suite runs once per entry: the fake in memory, the UTXO family on a real
# litecoind, the EVM family on a real anvil and on two anvils at different chain ids at
# once, the Monero family on a real monerod with a view-only wallet.
DRIVERS: dict[str, DriverEntry] = {
    "fake": DriverEntry("fake", "tests.contract.drivers.fake:FakeDriver"),
    "utxo": DriverEntry("utxo", "tests.contract.drivers.litecoin:LitecoinDriver",
                        ("litecoin",)),
    "evm": DriverEntry("evm", "tests.contract.drivers.evm:EvmDriver", ("anvil",)),
    "evm-networks": DriverEntry("evm", "tests.contract.drivers.evm_networks:NetworksDriver",
                                ("anvil", "anvil_b")),
    "monero": DriverEntry("monero", "tests.contract.drivers.monero:MoneroDriver",
                          ("monero",)),
}
KINDS = tuple(sorted({entry.kind for entry in DRIVERS.values()}))  # families with a driver
