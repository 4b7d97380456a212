"""The EVM family on two networks at once: two anvils at different chain ids, configured
as `[networks.A]` and `[networks.B]` with one xpub (so one address space), each with a
USDC token deployed at the same address, so only the chain id tells them apart. The
suite pays ETH-A on network A while the gateway follows both."""

from collections.abc import Sequence
from functools import cache
from typing import Any

from chains.base import Follower
from gateway import families
from gateway.config import network_coins
from tests.contract.drivers.evm import EvmDriver
from tests.support.evm import DeployedToken, compile_tokens, deploy_on_each
from tests.support.nodes import Anvil


@cache
def _bytecode() -> str:
    return compile_tokens()["NoBoolToken"]


_tokens: dict[tuple[str, str], DeployedToken] = {}


def token_on_both(a: Anvil, b: Anvil) -> DeployedToken:
    """USDC at one address on both chains (deployed again once the chains were reverted)."""
    key = (a.rpc_url, b.rpc_url)
    found = _tokens.get(key)
    if found is None or any(node.rpc("eth_getCode", found.address, "latest") in ("0x", "0x0")
                            for node in (a, b)):
        found = _tokens[key] = deploy_on_each([a, b], _bytecode(), "USDC", 6, 10**30)
    return found


class NetworksDriver(EvmDriver):
    coin = "ETH-A"
    asset = "ETH"

    def __init__(self, node: Anvil, other: Anvil) -> None:
        self.other = other
        self.token = token_on_both(node, other)
        assert node.chain_id != other.chain_id
        self.others: Sequence[Follower] = ()
        super().__init__(node)

    def tables(self) -> dict[str, dict[str, Any]]:
        return {name: {"kind": "evm", "name": f"Network {name}", "chain_id": n.chain_id,
                       "rpc_url": n.rpc_url, "xpub": self.xpub, "poll_interval_seconds": 0.1,
                       "tokens": {"USDC": {"contract": self.token.address, "decimals": 6,
                                           "symbol": "USDC"}}}
                for name, n in (("A", self.node), ("B", self.other))}

    def _build(self) -> Follower:
        self._url = self.node.rpc_url
        coins: dict[str, Any] = {}
        for name, table in self.tables().items():
            coins.update(network_coins(name, table, coins))
        by_feed = {f.feed: f for f in families.get("evm").build(coins)}
        assert by_feed["ETH-A"].address_space == by_feed["ETH-B"].address_space
        self.others = [by_feed["ETH-B"]]
        return by_feed["ETH-A"]

    def coin_env(self, confirmations: int) -> dict[str, str]:
        env = {}
        for name, table in self.tables().items():
            prefix = f"GATEWAY_NETWORKS__{name}__"
            env.update({f"{prefix}{k.upper()}": str(v) for k, v in table.items()
                        if k != "tokens"})
            env[f"{prefix}CONFIRMATIONS"] = str(confirmations)
            for key, value in table["tokens"]["USDC"].items():
                env[f"{prefix}TOKENS__USDC__{key.upper()}"] = str(value)
        return env

    async def stop_node(self) -> None:
        for follower in (self.follower, *self.others):
            await follower.aclose()
        self.node.stop()
