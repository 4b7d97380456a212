"""Test ERC-20 tokens on anvil: compiled from contracts/TestTokens.sol by solcjs
(--standard-json, no build output kept; the compiler call is the demo's), deployed and
moved with plain JSON-RPC."""

import secrets
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from gateway.demo.evm import compile_tokens as compile_tokens  # shared with the demo
from tests.support.nodes import Anvil

MAX_UINT256 = 2**256 - 1


@dataclass(frozen=True)
class DeployedToken:
    address: str  # EIP-55
    symbol: str
    decimals: int


def deploy(node: Anvil, bytecode: str, symbol: str, decimals: int,
           supply: int = MAX_UINT256, sender: int = 0) -> DeployedToken:
    """Deploy and mine it (the node does not automine)."""
    args = encode(["string", "string", "uint8", "uint256"],
                  [f"Test {symbol}", symbol, decimals, supply]).hex()
    txid = node.rpc("eth_sendTransaction", {"from": node.accounts[sender],
                                            "data": "0x" + bytecode + args,
                                            "gas": hex(3_000_000)})
    node.mine(1)
    receipt = node.rpc("eth_getTransactionReceipt", txid)
    assert int(receipt["status"], 16) == 1, receipt
    return DeployedToken(to_checksum_address(receipt["contractAddress"]), symbol, decimals)


DEPLOYER = 9  # the anvil account deploy_on_each deploys from; the suite pays from it nowhere else


def deploy_on_each(nodes: "list[Anvil]", bytecode: str, symbol: str, decimals: int,
                   supply: int = MAX_UINT256) -> DeployedToken:
    """One token deployed on each node at the same address (the same sender and nonce
    on every chain), as a token issuer often does: only the chain id tells them apart.
    The nonce is random, so another module (or a chain not reverted) never collides.
    The supply belongs to account DEPLOYER on each node."""
    deployer = DEPLOYER
    nonce = hex(secrets.randbelow(2**40) + 2**20)
    found = set()
    for node in nodes:
        node.rpc("anvil_setNonce", node.accounts[deployer], nonce)
        found.add(deploy(node, bytecode, symbol, decimals, supply, sender=deployer))
    [token] = found
    return token


TRANSFER = keccak(b"transfer(address,uint256)")[:4].hex()


def transfer(node: Anvil, token: DeployedToken | str, to: str, amount: int, sender: int = 0,
             **extra: Any) -> str:
    """A token transfer from a funded anvil account; its txid (pending until mined)."""
    contract = token.address if isinstance(token, DeployedToken) else token
    data = "0x" + TRANSFER + encode(["address", "uint256"], [to, amount]).hex()
    return str(node.rpc("eth_sendTransaction", {
        "from": node.accounts[sender], "to": contract, "data": data,
        "gas": hex(100_000), **extra}))
