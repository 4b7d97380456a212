"""The demo's anvil node (Ethereum dev node from `npm ci`), automine off so the demo mines
like the Litecoin one, and the test token (contracts/TestTokens.sol, compiled by solcjs at
run time) that stands in for USDC. Only what `gateway demo` needs; never used by
`gateway serve`. The tests use tests/support/nodes.py and share the compiler here."""

import json
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import base58
from coincurve import PrivateKey
from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from gateway.demo.node import NodeMissing, free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN_SOURCE = ROOT / "contracts" / "TestTokens.sol"
CHAIN_ID = 31337
_TRANSFER = keccak(b"transfer(address,uint256)")[:4].hex()


def _tool(name: str) -> str:
    local = ROOT / "node_modules" / ".bin" / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        raise NodeMissing(f"{name} is not installed; run `make setup` (npm ci)")
    return found


def compile_tokens() -> dict[str, str]:
    """Contract name -> deployment bytecode (hex, no 0x), from contracts/TestTokens.sol."""
    request = {
        "language": "Solidity",
        "sources": {"TestTokens.sol": {"content": TOKEN_SOURCE.read_text()}},
        # paris: no PUSH0, so the bytecode runs on any node.
        "settings": {"evmVersion": "paris", "optimizer": {"enabled": True, "runs": 200},
                     "outputSelection": {"*": {"*": ["evm.bytecode.object"]}}},
    }
    out = subprocess.run([_tool("solcjs"), "--standard-json"], input=json.dumps(request),
                         capture_output=True, text=True, check=True, timeout=120).stdout
    result = json.loads(out[out.index("{"):])  # solcjs may print a notice line first
    errors = [e["message"] for e in result.get("errors", ()) if e["severity"] == "error"]
    if errors:
        raise RuntimeError(f"solcjs: {errors}")
    return {name: c["evm"]["bytecode"]["object"]
            for name, c in result["contracts"]["TestTokens.sol"].items()}


def throwaway_xpub() -> str:
    """A random account-level extended public key (m/44'/60'/0' of nobody's wallet) for
    this run; its private key is never kept."""
    pub = PrivateKey(secrets.token_bytes(32)).public_key.format(compressed=True)
    payload = (bytes.fromhex("0488b21e") + b"\x03" + secrets.token_bytes(4)
               + (0x80000000).to_bytes(4, "big") + secrets.token_bytes(32) + pub)
    return base58.b58encode_check(payload).decode()


class Anvil:
    def __init__(self, datadir: Path) -> None:
        self.datadir = datadir
        self.rpc_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.accounts: list[str] = []

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    def start(self, timeout: float = 20.0) -> "Anvil":
        binary = _tool("anvil")
        self.datadir.mkdir(parents=True, exist_ok=True)
        log = self.datadir / "anvil.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [binary, "--host", "127.0.0.1", "--port", str(self.rpc_port),
                 "--chain-id", str(CHAIN_ID)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise NodeMissing(f"anvil exited with {code}; see {log}")
            try:
                self.accounts = list(self.rpc("eth_accounts"))
                self.rpc("evm_setAutomine", False)
                return self
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise NodeMissing(f"anvil did not answer in {timeout:.0f}s; see {log}"
                                      ) from None
                time.sleep(0.05)

    def rpc(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": list(params)}).encode()
        req = urllib.request.Request(  # noqa: S310 (loopback)
            self.rpc_url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (loopback)
            payload = json.loads(resp.read())
        if payload.get("error"):
            raise RuntimeError(f"{method}: {payload['error'].get('message')}")
        return payload["result"]

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.rpc("evm_mine")

    def pending(self) -> int:
        content = self.rpc("txpool_content")
        return sum(len(by_nonce) for by_nonce in content.get("pending", {}).values())

    def send(self, to: str, wei: int) -> str:
        return str(self.rpc("eth_sendTransaction",
                            {"from": self.accounts[0], "to": to, "value": hex(wei)}))

    def deploy_token(self, bytecode: str, symbol: str, decimals: int, supply: int) -> str:
        args = encode(["string", "string", "uint8", "uint256"],
                      [f"Demo {symbol}", symbol, decimals, supply]).hex()
        txid = self.rpc("eth_sendTransaction", {"from": self.accounts[0],
                                                "data": "0x" + bytecode + args,
                                                "gas": hex(3_000_000)})
        self.mine(1)
        receipt = self.rpc("eth_getTransactionReceipt", txid)
        if int(receipt["status"], 16) != 1:
            raise RuntimeError("the demo token did not deploy")
        return to_checksum_address(receipt["contractAddress"])

    def send_token(self, contract: str, to: str, amount: int) -> str:
        data = "0x" + _TRANSFER + encode(["address", "uint256"], [to, amount]).hex()
        return str(self.rpc("eth_sendTransaction", {"from": self.accounts[0], "to": contract,
                                                    "data": data, "gas": hex(100_000)}))

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
