"""A Monero regtest for `gateway demo --coin XMR` and the test suite: one monerod, a
miner wallet in its own monero-wallet-rpc, and a second wallet-rpc for the gateway's
view-only wallets (one wallet-rpc serves one open wallet at a time). monerod's start-up
and the 100 blocks of start-up mining are the expensive part: the tests start it once per
session (tests/support/monero_nodes.py), on ports leased across parallel runs. Never
used by `gateway serve`.

Quirks of Debian's monero 0.18 (see /work/shared/NODES.md): wallet-rpc rejects
`--regtest` (regtest uses mainnet prefixes); coinbase unlocks after 60 blocks;
`stop_wallet` fails with no wallet open, so wallet-rpc is stopped by SIGTERM."""

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gateway.demo.node import NodeMissing, free_port

# Loopback only, so TLS protects nothing here, and it costs: with the default
# `autodetect`, every monerod and wallet-rpc start generates an RSA certificate (seconds
# of CPU each, found with perf). An operator's own nodes keep their TLS settings.
NO_TLS = ("--rpc-ssl", "disabled")


def post(port: int, path: str, payload: dict[str, Any], timeout: float = 60) -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    # Only ever a loopback http:// URL built above from a port number.
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        return json.loads(resp.read())


def rpc(port: int, method: str, timeout: float = 60, **params: Any) -> Any:
    payload = {"jsonrpc": "2.0", "id": "0", "method": method, "params": params}
    body = post(port, "/json_rpc", payload, timeout)
    if "error" in body:
        raise RuntimeError(f"{method}: {body['error'].get('message')}")
    return body["result"]


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait(proc: subprocess.Popen[bytes], port: int, method: str, log: Path,
          timeout: float = 60) -> None:
    """Until the process answers `method`; when it exits or stays silent, the error carries
    the tail of its log (the directory holding it may be gone by the time anyone looks)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise NodeMissing(f"{log.parent.name}: exited with {proc.returncode}; "
                              f"{log}:\n{_tail(log)}")
        try:
            rpc(port, method, timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, OSError, RuntimeError, ValueError):
            if time.monotonic() > deadline:
                proc.kill()
                raise NodeMissing(f"{log.parent.name}: did not answer in {timeout:.0f}s; "
                                  f"{log}:\n{_tail(log)}") from None
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class WalletRpc:
    """One monero-wallet-rpc process on fixed loopback ports (restarted on the same)."""

    def __init__(self, root: Path, daemon_port: int,
                 port: Callable[[], int] = free_port,
                 env: Mapping[str, str] | None = None) -> None:
        self.dir = root
        self.env = dict(env or {})  # added to this process's environment
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port()
        self.daemon_port = daemon_port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/json_rpc"

    def start(self) -> "WalletRpc":
        binary = shutil.which("monero-wallet-rpc")
        if binary is None:
            raise NodeMissing("monero-wallet-rpc is not installed; run `make setup`")
        log = self.dir / "wallet-rpc.log"
        self.proc = subprocess.Popen(
            [binary, "--daemon-address", f"127.0.0.1:{self.daemon_port}", "--trusted-daemon",
             "--rpc-bind-ip", "127.0.0.1", "--rpc-bind-port", str(self.port),
             "--wallet-dir", str(self.dir), "--disable-rpc-login", "--non-interactive",
             *NO_TLS, "--daemon-ssl", "disabled",
             "--log-level", "0", "--log-file", str(log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env} if self.env else None)
        _wait(self.proc, self.port, "get_version", log)
        return self

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None

    def rpc(self, method: str, **params: Any) -> Any:
        return rpc(self.port, method, **params)


class MoneroRegtest:
    def __init__(self, root: Path, port: Callable[[], int] = free_port,
                 wallet_env: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.datadir = root / "monerod"
        self.rpc_port, self.p2p_port, self.zmq_port = port(), port(), port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.miner = WalletRpc(root / "miner", self.rpc_port, port, wallet_env)
        self.merchant = WalletRpc(root / "merchant", self.rpc_port, port, wallet_env)
        self.miner_address = ""
        self._shared: tuple[str, str, int] | None = None

    @property
    def daemon_url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    def start(self) -> "MoneroRegtest":
        binary = shutil.which("monerod")
        if binary is None:
            raise NodeMissing("monerod is not installed; run `make setup`")
        self.datadir.mkdir(parents=True, exist_ok=True)
        log = self.datadir / "monerod.out"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [binary, "--regtest", "--offline", "--fixed-difficulty", "1",
                 "--data-dir", str(self.datadir), "--rpc-bind-ip", "127.0.0.1",
                 "--rpc-bind-port", str(self.rpc_port), "--p2p-bind-ip", "127.0.0.1",
                 "--p2p-bind-port", str(self.p2p_port), "--zmq-rpc-bind-port",
                 str(self.zmq_port), "--no-igd", "--non-interactive", "--log-level", "0",
                 "--max-concurrency", "2", *NO_TLS,
                 # regtest (fakechain) wipes its database at start-up unless told not to:
                 # a restart must find the chain it left.
                 "--keep-fakechain"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _wait(self.proc, self.rpc_port, "get_info", log)
        return self

    def start_all(self, blocks: int = 100) -> "MoneroRegtest":
        self.start()
        self.miner.start()
        self.merchant.start()
        self.miner.rpc("create_wallet", filename="miner", language="English")
        self.miner_address = self.miner.rpc("get_address", account_index=0,
                                           address_index=[0])["address"]
        # Coinbase unlocks after 60 blocks: 100 give 40 spendable outputs to start with,
        # and every block the tests mine adds one more 60 blocks later.
        self.mine(blocks)
        return self

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None

    def wait_wallets(self, timeout: float = 30) -> None:
        """After a restart of monerod: until both wallet-rpcs are connected to it again
        (they reconnect by themselves, not at once)."""
        deadline = time.monotonic() + timeout
        for wallet in (self.miner, self.merchant):
            while True:
                try:
                    wallet.rpc("refresh")
                    break
                except RuntimeError as exc:
                    if "No wallet file" in str(exc):
                        break  # nothing open there: nothing to wait for
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)

    def stop_all(self) -> None:
        self.merchant.stop()
        self.miner.stop()
        self.stop()

    def rpc(self, method: str, **params: Any) -> Any:
        return rpc(self.rpc_port, method, **params)

    def mine(self, blocks: int = 1) -> list[str]:
        found = self.rpc("generateblocks", amount_of_blocks=blocks,
                         wallet_address=self.miner_address)
        return [str(h) for h in found["blocks"]]

    def height(self) -> int:
        """The tip's height (get_block_count counts blocks, the genesis included)."""
        return int(self.rpc("get_block_count")["count"]) - 1

    def header(self, height: int) -> dict[str, Any]:
        found: dict[str, Any] = self.rpc("get_block_header_by_height",
                                         height=height)["block_header"]
        return found

    def pop_to_below(self, block_hash: str) -> None:
        """That block and its successors leave the chain; their transactions go back to the
        pool (a reorg as monerod can simulate one)."""
        height = int(self.rpc("get_block_header_by_hash", hash=block_hash)
                     ["block_header"]["height"])
        body = post(self.rpc_port, "/pop_blocks", {"nblocks": self.height() - height + 1})
        assert body.get("status") == "OK", body

    def pay(self, destinations: list[tuple[str, int]], unlock_time: int = 0) -> str:
        # Right after a monerod restart the wallet may not be connected yet, or the
        # daemon not ready to serve decoys ("failed to get output distribution").
        deadline = time.monotonic() + 30
        while True:
            try:
                self.miner.rpc("refresh")
                sent = self.miner.rpc("transfer", destinations=[
                    {"address": a, "amount": amount} for a, amount in destinations],
                    unlock_time=unlock_time, get_tx_hex=True)
                txid = str(sent["tx_hash"])
                self._fluff(txid, str(sent["tx_blob"]))
                return txid
            except RuntimeError as exc:
                transient = ("no connection to daemon" in str(exc)
                             or "output distribution" in str(exc))
                if not transient or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _in_template(self, txid: str) -> bool:
        # The template's blob ends with the hashes of the transactions it carries.
        template = self.rpc("get_block_template", wallet_address=self.miner_address,
                            reserve_size=0)
        return txid in str(template["blocktemplate_blob"])

    def _fluff(self, txid: str, blob: str) -> None:
        """Make the transaction mineable now, as a real network would within seconds.

        monerod sends a wallet's own transaction through Dandelion++'s stem phase: it is
        in the pool but no block template takes it until it has been passed on. An
        offline regtest node has nobody to pass it to, and now and then holds it back
        for minutes ("Unable to send transaction(s) via Dandelion++ stem"), so a test
        that pays and mines one block would find it missing from that block. Such a
        transaction is taken out of the pool and submitted again as one not to relay,
        which a block may carry at once."""
        if self._in_template(txid):
            return
        flushed = self.rpc("flush_txpool", txids=[txid])
        assert flushed.get("status") == "OK", flushed
        answer = post(self.rpc_port, "/send_raw_transaction",
                      {"tx_as_hex": blob, "do_not_relay": True})
        if answer.get("status") != "OK":
            raise RuntimeError(f"resubmitting {txid}: {answer.get('reason') or answer}")
        deadline = time.monotonic() + 10
        while not self._in_template(txid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{txid} is in monerod's pool but no block takes it")
            time.sleep(0.1)

    def pool(self) -> set[str]:
        return set(post(self.rpc_port, "/get_transaction_pool_hashes", {}).get("tx_hashes", [])
                   or [])

    def shared_keys(self) -> tuple[str, str, int]:
        """One key set for the session's contract drivers (address, view key, restore
        height): making a wallet costs seconds, and each test uses its own indexes."""
        if self._shared is None:
            address, view, _ = self.new_keys()  # the spend key is dropped
            self._shared = (address, view, self.height())
        return self._shared

    def new_keys(self) -> tuple[str, str, str]:
        """A fresh Monero key set, made at runtime in the merchant wallet-rpc (no key is
        ever stored in the repository): (address, view key, spend key)."""
        name = f"keys-{secrets.token_hex(6)}"
        self.merchant.rpc("create_wallet", filename=name, language="English")
        try:
            address = self.merchant.rpc("get_address", account_index=0,
                                            address_index=[0])["address"]
            view = self.merchant.rpc("query_key", key_type="view_key")["key"]
            spend = self.merchant.rpc("query_key", key_type="spend_key")["key"]
        finally:
            self.merchant.rpc("close_wallet")
        return str(address), str(view), str(spend)
