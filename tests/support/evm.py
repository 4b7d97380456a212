"""Test ERC-20 tokens on anvil: compiled from tests/contracts/TestTokens.sol by solcjs
(--standard-json, no build output kept), deployed and moved with plain JSON-RPC."""

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from tests.support.nodes import Anvil, NodeMissing

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "contracts" / "TestTokens.sol"
MAX_UINT256 = 2**256 - 1


def compile_tokens() -> dict[str, str]:
    """Contract name -> deployment bytecode (hex, no 0x)."""
    solcjs = ROOT / "node_modules" / ".bin" / "solcjs"
    if not solcjs.exists():
        raise NodeMissing("solcjs is not installed; run `make setup` (npm ci)")
    request = {
        "language": "Solidity",
        "sources": {"TestTokens.sol": {"content": SOURCE.read_text()}},
        # paris: no PUSH0, so the bytecode runs on any node a test may use.
        "settings": {"evmVersion": "paris", "optimizer": {"enabled": True, "runs": 200},
                     "outputSelection": {"*": {"*": ["evm.bytecode.object"]}}},
    }
    out = subprocess.run([str(solcjs), "--standard-json"], input=json.dumps(request),
                         capture_output=True, text=True, check=True, timeout=120).stdout
    result = json.loads(out[out.index("{"):])  # solcjs may print a notice line first
    errors = [e for e in result.get("errors", ()) if e["severity"] == "error"]
    assert not errors, errors
    return {name: c["evm"]["bytecode"]["object"]
            for name, c in result["contracts"]["TestTokens.sol"].items()}


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


TRANSFER = keccak(b"transfer(address,uint256)")[:4].hex()


def transfer(node: Anvil, token: DeployedToken | str, to: str, amount: int, sender: int = 0,
             **extra: Any) -> str:
    """A token transfer from a funded anvil account; its txid (pending until mined)."""
    contract = token.address if isinstance(token, DeployedToken) else token
    data = "0x" + TRANSFER + encode(["address", "uint256"], [to, amount]).hex()
    return str(node.rpc("eth_sendTransaction", {
        "from": node.accounts[sender], "to": contract, "data": data,
        "gas": hex(100_000), **extra}))
