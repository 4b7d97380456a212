"""Local regtest nodes for the demo and the test suite: temporary data directory, free
loopback ports, stopped by PID. Never used by `gateway serve`."""

import base64
import json
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
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LitecoinRegtest:
    def __init__(self, datadir: Path) -> None:
        self.datadir = datadir
        self.rpc_port = free_port()
        self.p2p_port = free_port()
        self.user = "gw"
        self.password = secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://{self.user}:{self.password}@127.0.0.1:{self.rpc_port}"

    def start(self, timeout: float = 30.0) -> "LitecoinRegtest":
        binary = shutil.which("litecoind")
        if binary is None:
            raise NodeMissing("litecoind is not installed; run `make setup`")
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                binary, "-regtest", f"-datadir={self.datadir}", "-server",
                "-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1", f"-rpcport={self.rpc_port}",
                f"-port={self.p2p_port}", "-bind=127.0.0.1", f"-rpcuser={self.user}",
                f"-rpcpassword={self.password}", "-fallbackfee=0.0001", "-txindex=1",
                "-printtoconsole=0", "-listenonion=0", "-dnsseed=0", "-upnp=0",
                # Litecoin Core refuses BIP125 replacements unless asked; the tests need them.
                "-mempoolreplacement=1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.rpc("getblockchaininfo")
                return self
            except (urllib.error.URLError, ConnectionError, OSError, RuntimeError):
                if self.proc.poll() is not None:
                    raise NodeMissing(f"litecoind exited with {self.proc.returncode}") from None
                if time.monotonic() > deadline:
                    raise NodeMissing("litecoind did not answer in time") from None
                time.sleep(0.1)

    def rpc(self, method: str, *params: Any, wallet: str | None = None) -> Any:
        path = f"/wallet/{wallet}" if wallet else "/"
        body = json.dumps({"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)})
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.rpc_port}{path}", data=body.encode(), method="POST"
        )
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 (loopback http)
                payload = json.loads(resp.read(), parse_float=Decimal)
        except urllib.error.HTTPError as exc:
            payload = json.loads(exc.read() or b"{}", parse_float=Decimal)
            if not payload.get("error"):
                raise
        if payload.get("error"):
            raise RuntimeError(f"{method}: {payload['error'].get('message')}")
        return payload["result"]

    # -- wallet helpers used by the demo and the tests ------------------------------------
    def create_wallet(self, name: str = "miner") -> str:
        self.rpc("createwallet", name)
        self.wallet = name
        return str(self.rpc("getnewaddress", "", "bech32", wallet=name))

    def mine(self, blocks: int = 1) -> list[str]:
        # A fresh coinbase address each time: a block re-mined after `invalidateblock` in
        # the same second would otherwise be identical to the invalid one and be refused.
        address = self.rpc("getnewaddress", "", "bech32", wallet=self.wallet)
        return list(self.rpc("generatetoaddress", blocks, address))

    def send(self, address: str, amount: str, replaceable: bool = False) -> str:
        return str(
            self.rpc("sendtoaddress", address, amount, "", "", False, replaceable,
                     wallet=self.wallet)
        )

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
