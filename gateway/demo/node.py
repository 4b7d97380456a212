"""The demo's Litecoin Core regtest node: a temporary data directory, loopback ports,
stopped by PID. Only what `gateway demo` needs; the test suite has its own harness
(tests/support/nodes.py: ports leased across parallel runs, retries, failure reports).
Never used by `gateway serve`."""

import base64
import json
import random
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any


class NodeMissing(RuntimeError):
    """litecoind is not installed, or it did not start."""


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port nothing listens on now, chosen below the kernel's range for
    outgoing connections: a port from that range (what binding port 0 gives) can be taken
    by any client socket between this check and the node's or listener's bind, which is
    how a demo run beside the test suite once lost its metrics port."""
    top = _ephemeral_start()
    for _ in range(200):
        port = random.randrange(10000, top)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise NodeMissing("no free loopback port below the ephemeral range")


class LitecoinRegtest:
    def __init__(self, datadir: Path) -> None:
        self.datadir = datadir
        self.rpc_port = free_port()
        self.p2p_port = free_port()
        self.user = "gw"
        self.password = secrets.token_hex(16)
        self.wallet = ""
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://{self.user}:{self.password}@127.0.0.1:{self.rpc_port}"

    def start(self, timeout: float = 30.0) -> "LitecoinRegtest":
        binary = shutil.which("litecoind")
        if binary is None:
            raise NodeMissing("litecoind is not installed; run `make setup`")
        self.datadir.mkdir(parents=True, exist_ok=True)
        log = self.datadir / "litecoind.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [binary, "-regtest", f"-datadir={self.datadir}", "-server",
                 "-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1", f"-rpcport={self.rpc_port}",
                 f"-port={self.p2p_port}", "-bind=127.0.0.1", f"-rpcuser={self.user}",
                 f"-rpcpassword={self.password}", "-fallbackfee=0.0001", "-txindex=1",
                 "-printtoconsole=0", "-listenonion=0", "-dnsseed=0", "-upnp=0"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise NodeMissing(f"litecoind exited with {code}; see {log}")
            try:
                self.rpc("getblockchaininfo", timeout=2)
                return self
            except (OSError, RuntimeError, ValueError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise NodeMissing(
                        f"litecoind did not answer in {timeout:.0f}s; see {log}") from None
                time.sleep(0.1)

    def rpc(self, method: str, *params: Any, wallet: str | None = None,
            timeout: float = 60) -> Any:
        path = f"/wallet/{wallet}" if wallet else "/"
        body = json.dumps({"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)})
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.rpc_port}{path}", data=body.encode(), method="POST")
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (loopback)
                payload = json.loads(resp.read(), parse_float=Decimal)
        except urllib.error.HTTPError as exc:
            payload = json.loads(exc.read() or b"{}", parse_float=Decimal)
            if not payload.get("error"):
                raise
        if payload.get("error"):
            raise RuntimeError(f"{method}: {payload['error'].get('message')}")
        return payload["result"]

    def create_wallet(self, name: str = "miner") -> str:
        self.rpc("createwallet", name)
        self.wallet = name
        return str(self.rpc("getnewaddress", "", "bech32", wallet=name))

    def mine(self, blocks: int = 1) -> list[str]:
        address = self.rpc("getnewaddress", "", "bech32", wallet=self.wallet)
        return list(self.rpc("generatetoaddress", blocks, address))

    def send(self, address: str, amount: str) -> str:
        return str(self.rpc("sendtoaddress", address, amount, wallet=self.wallet))

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.rpc("stop")
            self.proc.wait(timeout=20)
        except Exception:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
