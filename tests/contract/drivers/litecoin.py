from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import bech32

from chains.base import Destination, Follower
from gateway import families
from tests.support.keys import random_xpub
from tests.support.nodes import LitecoinRegtest


def _coins(base_units: int) -> str:
    return format(Decimal(base_units).scaleb(-8).normalize(), "f")


class LitecoinDriver:
    """The UTXO family on a real Litecoin Core regtest node."""

    kind = "utxo"
    coin = "LTC"
    asset = "LTC"
    others: tuple[Follower, ...] = ()

    def __init__(self, node: LitecoinRegtest) -> None:
        self.node = node
        self.xpub = random_xpub()
        self.follower = self._build()

    def _build(self) -> Follower:
        family = families.get("utxo")
        self._url = self.node.rpc_url
        settings = family.settings.model_validate({
            "kind": "utxo", "network": "litecoin-regtest", "rpc_url": self._url,
            "xpub": self.xpub, "poll_interval_seconds": 0.1, "fallback_fee_rate": 10,
        })
        [follower] = family.build({self.coin: settings})
        return follower

    def pay(self, destination: Destination, base_units: int, replaceable: bool = False) -> str:
        return self.node.send(destination.address, _coins(base_units), replaceable=replaceable)

    def pay_many(self, destinations: Sequence[Destination], base_units: int) -> list[str]:
        return [self.pay(d, base_units) for d in destinations]

    def mine(self, blocks: int = 1) -> list[str]:
        return self.node.mine(blocks)

    def invalidate(self, block_hash: str) -> None:
        self.node.rpc("invalidateblock", block_hash)

    def replace(self, txid: str) -> str:
        return str(self.node.rpc("bumpfee", txid, wallet=self.node.wallet)["txid"])

    def block_hash(self, height: int) -> str:
        return str(self.node.rpc("getblockhash", height))

    def block_time(self, block_hash: str) -> datetime:
        return datetime.fromtimestamp(self.node.rpc("getblockheader", block_hash)["time"], UTC)

    def first_seen(self, txid: str) -> datetime | None:
        # The node's own sighting, rounded up to the end of its whole second.
        return datetime.fromtimestamp(self.node.rpc("getmempoolentry", txid)["time"] + 1, UTC)

    def check_destination(self, destination: Destination) -> None:
        assert destination.address.startswith("rltc1q")
        info = self.node.rpc("validateaddress", destination.address)
        assert info["isvalid"]
        assert bytes.fromhex(info["scriptPubKey"]) == destination.match_key

    def expected_uri(self, destination: Destination, base_units: int) -> str:
        return f"litecoin:{destination.address}?amount={_coins(base_units)}"

    def customer_address(self) -> str:
        return str(self.node.rpc("getnewaddress", "", "bech32", wallet=self.node.wallet))

    def denormalised(self, address: str) -> str:
        return address.upper()  # bech32 may be written in capitals (QR codes are)

    def foreign_address(self) -> str:
        return str(bech32.encode("ltc", 0, bytes(range(20))))  # Litecoin mainnet

    def coin_env(self, confirmations: int) -> dict[str, str]:
        c = f"GATEWAY_COINS__{self.coin}__"
        return {f"{c}KIND": "utxo", f"{c}NETWORK": "litecoin-regtest",
                f"{c}RPC_URL": self.node.rpc_url, f"{c}XPUB": self.xpub,
                f"{c}POLL_INTERVAL_SECONDS": "0.1", f"{c}FALLBACK_FEE_RATE": "10",
                f"{c}CONFIRMATIONS": str(confirmations)}

    async def stop_node(self) -> None:
        # Open keep-alive connections hold up litecoind's shutdown: close ours first (the
        # client opens a new session on its next call).
        await self.follower.aclose()
        self.node.stop()

    async def start_node(self) -> None:
        self.node.start()
        try:
            self.node.rpc("loadwallet", self.node.wallet)
        except RuntimeError as exc:
            if "already loaded" not in str(exc):
                raise
        if self.node.rpc_url != self._url:  # restarted on new ports (one was taken)
            self.follower = self._build()
