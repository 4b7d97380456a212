import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from chains.base import Destination, Follower
from chains.uri import decimal_units
from gateway import families
from tests.support.monero_address import STAGENET, with_prefix
from tests.support.monero_nodes import MoneroRegtest, post


class MoneroDriver:
    """The Monero family on a real monerod regtest, with a view-only wallet made from keys
    generated at runtime (once per session; each test pays its own indexes)."""

    kind = "monero"
    coin = "XMR"
    asset = "XMR"
    others: tuple[Follower, ...] = ()

    def __init__(self, node: MoneroRegtest, own_wallet: bool = False) -> None:
        self.node = node
        if own_wallet:  # a test that must see no other test's payments (reconciliation)
            self.address, self.view_key, _ = node.new_keys()
            self.restore_height = node.height()
        else:
            self.address, self.view_key, self.restore_height = node.shared_keys()
        self.wallet_name = f"view-{self.address[:12]}"
        self._secrets = Path(tempfile.mkdtemp(prefix="xmr-secrets-"))
        (self._secrets / "view_key").write_text(self.view_key + "\n")
        (self._secrets / "password").write_text("wallet-password\n")
        self._paid: dict[str, tuple[Destination, int]] = {}
        self._customer: str | None = None
        self.follower = self._build()

    def settings(self) -> dict[str, object]:
        return {"kind": "monero", "daemon_url": self.node.daemon_url,
                "wallet_rpc_url": self.node.merchant.url, "address": self.address,
                "view_key": self.view_key, "wallet_name": self.wallet_name,
                "wallet_password": "wallet-password", "restore_height": self.restore_height,
                "poll_interval_seconds": 0.2}

    def _build(self) -> Follower:
        family = families.get("monero")
        [follower] = family.build({self.coin: family.settings.model_validate(self.settings())})
        return follower

    def pay(self, destination: Destination, base_units: int, replaceable: bool = False) -> str:
        # Monero has no opt-in replacement: any pool transaction can be "replaced" by
        # flushing it (see replace); `replaceable` changes nothing.
        txid = self.node.pay([(destination.address, base_units)])
        self._paid[txid] = (destination, base_units)
        return txid

    def pay_many(self, destinations: Sequence[Destination], base_units: int) -> list[str]:
        txids: list[str] = []
        for start in range(0, len(destinations), 15):  # 16 outputs at most, one is change
            chunk = destinations[start:start + 15]
            txid = self.node.pay([(d.address, base_units) for d in chunk])
            txids.extend([txid] * len(chunk))  # one payment per destination
        return txids

    def mine(self, blocks: int = 1) -> list[str]:
        return self.node.mine(blocks)

    def invalidate(self, block_hash: str) -> None:
        self.node.pop_to_below(block_hash)

    def replace(self, txid: str) -> str:
        # The original leaves the pool (as a double spend mined elsewhere would make it)
        # and a new transaction pays the same destination the same amount.
        body = self.node.rpc("flush_txpool", txids=[txid])
        assert body["status"] == "OK"
        destination, base_units = self._paid[txid]
        return self.pay(destination, base_units)

    def block_hash(self, height: int) -> str:
        return str(self.node.header(height)["hash"])

    def block_time(self, block_hash: str) -> datetime:
        header = self.node.rpc("get_block_header_by_hash", hash=block_hash)["block_header"]
        return datetime.fromtimestamp(int(header["timestamp"]), UTC)

    def first_seen(self, txid: str) -> datetime | None:
        # monerod's own receive time, rounded up to the end of its whole second.
        [tx] = post(self.node.rpc_port, "/get_transactions", {"txs_hashes": [txid]})["txs"]
        assert tx["in_pool"]
        return datetime.fromtimestamp(int(tx["received_timestamp"]) + 1, UTC)

    def check_destination(self, destination: Destination) -> None:
        info = self.node.miner.rpc("validate_address", address=destination.address)
        assert info["valid"] and info["subaddress"] and info["nettype"] == "mainnet"
        assert destination.match_key == destination.address.encode()

    def expected_uri(self, destination: Destination, base_units: int) -> str:
        return f"monero:{destination.address}?tx_amount={decimal_units(base_units, 12)}"

    def customer_address(self) -> str:
        if self._customer is None:
            self._customer = self.node.new_keys()[0]
        return self._customer

    def denormalised(self, address: str) -> str:
        return f"  {address}\n"

    def foreign_address(self) -> str:
        return with_prefix(self.customer_address(), STAGENET)

    def coin_env(self, confirmations: int) -> dict[str, str]:
        c = f"GATEWAY_COINS__{self.coin}__"
        return {f"{c}KIND": "monero", f"{c}DAEMON_URL": self.node.daemon_url,
                f"{c}WALLET_RPC_URL": self.node.merchant.url, f"{c}ADDRESS": self.address,
                f"{c}VIEW_KEY_FILE": str(self._secrets / "view_key"),
                f"{c}WALLET_PASSWORD_FILE": str(self._secrets / "password"),
                f"{c}WALLET_NAME": self.wallet_name,
                f"{c}RESTORE_HEIGHT": str(self.restore_height),
                f"{c}POLL_INTERVAL_SECONDS": "0.2", f"{c}CONFIRMATIONS": str(confirmations)}

    async def stop_node(self) -> None:
        await self.follower.aclose()
        self.node.stop()

    async def start_node(self) -> None:
        self.node.start()  # the same ports: the wallet-rpcs reconnect by themselves
        self.node.wait_wallets()



