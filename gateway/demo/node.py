"""The regtest nodes `gateway demo` and the test suite start (one launcher for both; the
tests reach it through tests/support/nodes.py): a temporary data directory, free loopback
ports leased across parallel runs, retries on a port taken, failure reports with the
node's own output, stopped by PID. Never used by `gateway serve`."""

import base64
import contextlib
import fcntl
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any


class NodeMissing(RuntimeError):
    """The node cannot be used: not installed, or (NodeFailed) it did not start."""


class NodeFailed(NodeMissing):
    """The node is installed but did not start; the message ends with its output."""


# -- port allocation -------------------------------------------------------------------
#
# `make test` runs two pytest processes side by side, each starting nodes and gateways on
# ports it picked itself. Asking the kernel for a free port (bind to port 0, close, hand
# the number on) races twice: the other run can be handed the same number before either
# binds it, and the number comes from the ephemeral range, which the kernel also uses for
# every outgoing connection (HTTP clients, PostgreSQL) made meanwhile.
#
# (A demo run beside the test suite once lost its metrics port that way.)
#
# So `free_port()` picks at random from *below* the ephemeral range (10000 up to
# ip_local_port_range's start; the kernel never assigns those by itself) and records every
# port it hands out in a small registry file in the temporary directory, under an
# exclusive flock. A port stays leased while the process that asked for it lives (at most
# LEASE_SECONDS): no two processes using this function, and no two calls in one process,
# get the same port, even for a server that is stopped and started again on its port. A
# port is only handed out if a test bind (without SO_REUSEADDR) succeeds, so ports in use
# by anything else are skipped too. Whatever remains (a program outside this scheme taking
# the port between the pick and the bind) is caught by the callers, which retry on new
# ports: LitecoinRegtest.start(), Anvil.start() and the tests' GatewayProcess.start().

LEASE_SECONDS = 3600.0
_LOWEST_PORT = 10000
_MIN_RANGE = 2000


def _port_range() -> tuple[int, int]:
    """Ports the kernel never picks on its own: below (or else above) the ephemeral range."""
    try:
        low, high = (int(v) for v in
                     Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    if low - 1 - _LOWEST_PORT >= _MIN_RANGE:
        return _LOWEST_PORT, low - 1
    if 65535 - (high + 1) >= _MIN_RANGE:
        return high + 1, 65535
    return 1024, 65535


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _registry() -> Iterator[IO[str] | None]:
    """The lease file, locked for this process; None if it cannot be used."""
    path = Path(tempfile.gettempdir()) / f"packetra-ports-{os.getuid()}.json"
    try:
        f = path.open("a+")
    except OSError:
        yield None
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file is closed
        yield f


def free_port() -> int:
    """A loopback TCP port nothing is bound to, leased to this process (see above)."""
    low, high = _port_range()
    with _registry() as f:
        now = time.time()
        leases: dict[str, list[float]] = {}
        if f is not None:
            f.seek(0)
            try:
                leases = {port: [pid, at] for port, (pid, at) in json.loads(f.read()).items()
                          if now - at < LEASE_SECONDS and _alive(int(pid))}
            except (ValueError, TypeError, AttributeError):
                leases = {}  # empty or damaged: start afresh
        for _ in range(1000):
            port = random.randint(low, high)
            if str(port) not in leases and _bindable(port):
                break
        else:
            raise RuntimeError(f"no free loopback port in {low}-{high}")
        leases[str(port)] = [os.getpid(), now]
        if f is not None:
            f.seek(0)
            f.truncate()
            f.write(json.dumps(leases))
            f.flush()
        return port


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_bytes()[-200_000:].decode(errors="replace")
    except OSError as exc:
        return f"({path}: {exc.strerror or exc})"
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else "(empty)"


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# What litecoind says when a port it was given is taken (RPC bind failures are fatal; a
# P2P bind failure is only fatal when no P2P port could be bound at all).
_PORT_TAKEN = ("Unable to bind", "Binding RPC on address", "Address already in use",
               "Failed to listen on any port")


class _Failure:
    def __init__(self, reason: str, port_taken: bool) -> None:
        self.reason = reason
        self.port_taken = port_taken


class LitecoinRegtest:
    """A regtest litecoind in `datadir`. Its stdout and stderr go to datadir/litecoind.log,
    its own log to datadir/regtest/debug.log; both are kept, and a node that does not
    start raises NodeFailed with the tail of each."""

    START_ATTEMPTS = 4  # a port taken between free_port() and litecoind's bind: new ports

    def __init__(self, datadir: Path) -> None:
        self.datadir = datadir
        self.rpc_port = free_port()
        self.p2p_port = free_port()
        self.user = "gw"
        self.password = secrets.token_hex(16)
        self.wallet = ""  # the wallet that mines and pays (create_wallet)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://{self.user}:{self.password}@127.0.0.1:{self.rpc_port}"

    @property
    def output_path(self) -> Path:
        """Everything litecoind printed on stdout and stderr, across start attempts."""
        return self.datadir / "litecoind.log"

    @property
    def debug_log_path(self) -> Path:
        return self.datadir / "regtest" / "debug.log"

    def start(self, timeout: float = 30.0) -> "LitecoinRegtest":
        binary = shutil.which("litecoind")
        if binary is None:
            raise NodeMissing("litecoind is not installed; run `make setup`")
        self.datadir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, self.START_ATTEMPTS + 1):
            if attempt > 1:
                self.rpc_port, self.p2p_port = free_port(), free_port()
            failure = self._start_once(binary, attempt, timeout)
            if failure is None:
                return self
            if not failure.port_taken or attempt == self.START_ATTEMPTS:
                raise NodeFailed(self._failure_report(failure.reason, attempt))
        raise AssertionError("unreachable")

    def _start_once(self, binary: str, attempt: int, timeout: float) -> "_Failure | None":
        debug_offset = _size(self.debug_log_path)
        with self.output_path.open("ab") as out:
            out.write(f"--- attempt {attempt}: rpcport {self.rpc_port}, port {self.p2p_port} "
                      f"---\n".encode())
            out.flush()
            output_offset = out.tell()
            self.proc = subprocess.Popen(
                [
                    binary, "-regtest", f"-datadir={self.datadir}", "-server",
                    "-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1", f"-rpcport={self.rpc_port}",
                    f"-port={self.p2p_port}", "-bind=127.0.0.1", f"-rpcuser={self.user}",
                    f"-rpcpassword={self.password}", "-fallbackfee=0.0001", "-txindex=1",
                    "-printtoconsole=0", "-listenonion=0", "-dnsseed=0", "-upnp=0",
                    # Litecoin Core refuses BIP125 replacements unless asked; the tests need them.
                    "-mempoolreplacement=1",
                    "-rest",  # binary blocks for the watcher's `rest = true`
                ],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        proc = self.proc
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                self.proc = None
                said = (_read_from(self.output_path, output_offset)
                        + _read_from(self.debug_log_path, debug_offset))
                return _Failure(f"litecoind exited with {proc.returncode}",
                                any(s in said for s in _PORT_TAKEN))
            try:
                # A short timeout: whatever else answers on a taken port must not hang us.
                self.rpc("getblockchaininfo", timeout=2)
                return None
            except (urllib.error.URLError, ConnectionError, OSError, RuntimeError, ValueError):
                if time.monotonic() > deadline:
                    self._kill()
                    return _Failure(f"litecoind did not answer in {timeout:.0f}s", False)
                time.sleep(0.1)

    def _failure_report(self, reason: str, attempts: int) -> str:
        tried = f" (after {attempts} attempts on new ports)" if attempts > 1 else ""
        return (f"{reason}{tried}; datadir {self.datadir}\n"
                f"--- last lines of {self.output_path} ---\n{_tail(self.output_path)}\n"
                f"--- last lines of {self.debug_log_path} ---\n{_tail(self.debug_log_path)}")

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def rpc(self, method: str, *params: Any, wallet: str | None = None,
            timeout: float = 60) -> Any:
        path = f"/wallet/{wallet}" if wallet else "/"
        body = json.dumps({"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)})
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.rpc_port}{path}", data=body.encode(), method="POST"
        )
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

    # -- wallet helpers for the demo and the tests ---------------------------
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

    MWEB_HEIGHT = 431  # regtest: MWEB is active from the block after 431 (NODES.md)

    def activate_mweb(self) -> str:
        """Mines up to MWEB activation with the peg-in its first block needs: from then on
        every block carries a HogEx transaction and an MWEB extension block. (Litecoin
        Core 0.21.2 cannot mine past height 431 without a peg-in: `generatetoaddress`
        fails with bad-txns-vin-empty.) Returns the peg-in's txid."""
        height = int(self.rpc("getblockcount"))
        if height < self.MWEB_HEIGHT:
            self.mine(self.MWEB_HEIGHT - height)
        mweb = self.rpc("getnewaddress", "", "mweb", wallet=self.wallet)
        txid = self.send(str(mweb), "10")
        self.mine(1)
        return txid

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.rpc("stop")
            self.proc.wait(timeout=20)
        except Exception:
            self._kill()
        self.proc = None
