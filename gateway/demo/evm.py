"""The anvil node (Ethereum dev node from `npm ci`) that `gateway demo` and the test suite
start (the tests through tests/support/nodes.py), automine off so it mines like the
Litecoin one, and the test tokens (contracts/TestTokens.sol, compiled by solcjs at run
time) that stand in for USDC. Never used by `gateway serve`."""

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

from gateway.demo.node import NodeFailed, NodeMissing, free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN_SOURCE = ROOT / "contracts" / "TestTokens.sol"
CHAIN_ID = 31337
NETWORK_CHAIN_ID = 31338  # `gateway demo --coin USDC-<NETWORK>`: a second network's
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"  # public
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


def anvil_binary() -> str:
    """The project-local anvil from `npm ci` (node_modules/.bin), else one on PATH."""
    return _tool("anvil")


class Anvil:
    """A real anvil node on a free loopback port, automine off (the caller mines), its
    accounts from the public test mnemonic. Its state file keeps the chain (blocks and
    hashes) across stop() and start(), as a real node's database does; only its pool is
    lost."""

    START_ATTEMPTS = 5  # a port taken between free_port() and anvil's bind: a new port

    def __init__(self, datadir: Path, chain_id: int = CHAIN_ID) -> None:
        self.datadir = datadir
        self.chain_id = chain_id
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.accounts: list[str] = []

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> "Anvil":
        binary = anvil_binary()
        self.datadir.mkdir(parents=True, exist_ok=True)
        log = self.datadir / "anvil.log"
        for _attempt in range(self.START_ATTEMPTS):
            self.port = free_port()
            with log.open("ab") as out:
                self.proc = subprocess.Popen(
                    [binary, "--host", "127.0.0.1", "--port", str(self.port),
                     "--chain-id", str(self.chain_id), "--state",
                     str(self.datadir / "state.json"), "--accounts", "10",
                     "--mnemonic", ANVIL_MNEMONIC],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    self.accounts = list(self.rpc("eth_accounts"))
                    self.rpc("evm_setAutomine", False)
                    return self
                except (OSError, urllib.error.URLError):
                    time.sleep(0.05)
            self._kill()
        tail = log.read_text(errors="replace")[-2000:]
        raise NodeFailed(f"anvil did not start; see {log}:\n{tail}")

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: anvil writes its state file
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        self._kill()

    def rpc(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": list(params)}).encode()
        req = urllib.request.Request(  # noqa: S310 (loopback)
            self.rpc_url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (loopback)
            answer = json.loads(resp.read())
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def send(self, to: str, wei: int, sender: int = 0, **extra: Any) -> str:
        tx = {"from": self.accounts[sender], "to": to, "value": hex(wei), **extra}
        return str(self.rpc("eth_sendTransaction", tx))

    def mine(self, blocks: int = 1) -> list[str]:
        hashes = []
        for _ in range(blocks):
            # A fresh coinbase per block: a block re-mined after a reorg with the same
            # transactions in the same second still gets a new hash.
            self.rpc("anvil_setCoinbase", "0x" + secrets.token_hex(20))
            self.rpc("evm_mine")
            hashes.append(str(self.rpc("eth_getBlockByNumber", "latest", False)["hash"]))
        return hashes

    def height(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def block(self, ref: str | int, full: bool = False) -> dict[str, Any]:
        if isinstance(ref, int):
            found = self.rpc("eth_getBlockByNumber", hex(ref), full)
        else:
            found = self.rpc("eth_getBlockByHash", ref, full)
        if found is None:
            raise LookupError(f"no block {ref}")
        return dict(found)

    def invalidate(self, block_hash: str) -> list[str]:
        """That block and its successors leave the chain; their transactions go back to
        the pool (anvil_rollback drops them, so they are re-sent from their raw bytes)."""
        height = int(self.block(block_hash)["number"], 16)
        head = self.height()
        raws = [self.rpc("eth_getRawTransactionByHash", tx)
                for h in range(height, head + 1) for tx in self.block(h)["transactions"]]
        self.rpc("anvil_rollback", head - height + 1)
        return [str(self.rpc("eth_sendRawTransaction", raw)) for raw in raws]

    def pending(self) -> int:
        content = self.rpc("txpool_content")
        return sum(len(by_nonce) for by_nonce in content.get("pending", {}).values())

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
