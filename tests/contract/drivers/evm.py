import time
from collections.abc import Sequence
from datetime import UTC, datetime

from eth_utils.address import to_checksum_address

from chains.base import Destination, Follower
from gateway import families
from tests.support.keys import random_xpub
from tests.support.nodes import Anvil


class EvmDriver:
    """The EVM family (native ETH) on a real anvil node, automine off."""

    kind = "evm"
    coin = "ETH"
    asset = "ETH"
    others: tuple[Follower, ...] = ()

    def __init__(self, node: Anvil) -> None:
        self.node = node
        self.xpub = random_xpub()
        self.follower = self._build()

    def _build(self) -> Follower:
        family = families.get("evm")
        self._url = self.node.rpc_url
        settings = family.settings.model_validate({
            "kind": "evm", "rpc_url": self._url, "chain_id": self.node.chain_id,
            "xpub": self.xpub, "poll_interval_seconds": 0.1,
        })
        [follower] = family.build({self.coin: settings})
        return follower

    def pay(self, destination: Destination, base_units: int, replaceable: bool = False) -> str:
        return self.node.send(destination.address, base_units)  # every pending tx is

    def pay_many(self, destinations: Sequence[Destination], base_units: int) -> list[str]:
        return [self.pay(d, base_units) for d in destinations]

    def mine(self, blocks: int = 1) -> list[str]:
        return self.node.mine(blocks)

    def invalidate(self, block_hash: str) -> None:
        self.node.invalidate(block_hash)
        # anvil_rollback winds anvil's clock back to the remaining head's time: the next
        # test on this session's anvil (the two-network driver's, say) would stamp its
        # blocks seconds in the past, and heights_between would not find them.
        self.node.rpc("evm_setTime", int(time.time()))

    def replace(self, txid: str) -> str:
        # Same sender and nonce, higher fees: the node drops the original.
        tx = self.node.rpc("eth_getTransactionByHash", txid)
        return str(self.node.rpc("eth_sendTransaction", {
            "from": tx["from"], "to": tx["to"], "value": tx["value"], "nonce": tx["nonce"],
            "maxFeePerGas": hex(int(tx["maxFeePerGas"], 16) * 2),
            "maxPriorityFeePerGas": hex(int(tx["maxPriorityFeePerGas"], 16) * 2)}))

    def block_hash(self, height: int) -> str:
        return str(self.node.block(height)["hash"])

    def block_time(self, block_hash: str) -> datetime:
        return datetime.fromtimestamp(int(self.node.block(block_hash)["timestamp"], 16), UTC)

    def first_seen(self, txid: str) -> datetime | None:
        return None  # Ethereum nodes do not say when their pool took a transaction in

    def check_destination(self, destination: Destination) -> None:
        assert destination.address == to_checksum_address(destination.address)  # EIP-55
        assert bytes.fromhex(destination.address[2:]) == destination.match_key
        assert int(self.node.rpc("eth_getBalance", destination.address, "latest"), 16) >= 0

    def expected_uri(self, destination: Destination, base_units: int) -> str:
        return f"ethereum:{destination.address}@{self.node.chain_id}?value={base_units}"

    def customer_address(self) -> str:
        return to_checksum_address(self.node.accounts[7])

    def denormalised(self, address: str) -> str:
        return address.lower()  # no checksum: accepted, and checksummed

    def foreign_address(self) -> str:
        address = self.customer_address()
        at = next(i for i, c in enumerate(address) if i > 1 and c.isalpha())
        return address[:at] + address[at].swapcase() + address[at + 1:]  # EIP-55 broken

    def coin_env(self, confirmations: int) -> dict[str, str]:
        c = f"GATEWAY_COINS__{self.coin}__"
        return {f"{c}KIND": "evm", f"{c}RPC_URL": self.node.rpc_url,
                f"{c}CHAIN_ID": str(self.node.chain_id), f"{c}XPUB": self.xpub,
                f"{c}POLL_INTERVAL_SECONDS": "0.1", f"{c}CONFIRMATIONS": str(confirmations)}

    async def stop_node(self) -> None:
        await self.follower.aclose()
        self.node.stop()

    async def start_node(self) -> None:
        self.node.start()
        if self.node.rpc_url != self._url:  # a new port each start
            self.follower = self._build()
