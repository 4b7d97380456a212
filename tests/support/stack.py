"""The whole gateway as a separate process, a webhook receiver on loopback, and helpers."""

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.support.cli import ForkedProcess, run_gateway
from tests.support.keys import random_xpub, security_env
from tests.support.nodes import LitecoinRegtest, free_port


def gateway_env(db_url: str, node: LitecoinRegtest, port: int, **extra: str) -> dict[str, str]:
    env = {
        "GATEWAY_DATABASE__URL": db_url,
        "GATEWAY_SERVER__PORT": str(port),
        "GATEWAY_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
        "GATEWAY_SERVER__METRICS_LISTEN": f"127.0.0.1:{free_port()}",
        # The staff console is off unless a test asks for it (its default port is fixed).
        "GATEWAY_STAFF__LISTEN": "",
        "GATEWAY_SERVER__LOG_LEVEL": "DEBUG",
        "GATEWAY_COINS__LTC__KIND": "utxo",
        "GATEWAY_COINS__LTC__NETWORK": "litecoin-regtest",
        "GATEWAY_COINS__LTC__RPC_URL": node.rpc_url,
        "GATEWAY_COINS__LTC__XPUB": random_xpub(),
        "GATEWAY_COINS__LTC__CONFIRMATIONS": "3",
        "GATEWAY_COINS__LTC__POLL_INTERVAL_SECONDS": "0.2",
        "GATEWAY_RATES__FIXED": json.dumps({"LTC-EUR": "80.00"}),
        "GATEWAY_WEBHOOKS__ALLOW_PRIVATE_TARGETS": json.dumps(["127.0.0.0/8"]),
        "GATEWAY_WEBHOOKS__RETRY_SCHEDULE_SECONDS": json.dumps([0.5] * 7),
        **security_env(),
    }
    env.update(extra)
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`gateway *args` as its own process (forked from a warm parent), the test process's
    environment plus `env`."""
    return run_gateway(list(args), {**os.environ, **env})


def _listening_pid_owns(pid: int, port: int) -> bool:
    """Whether process `pid` holds the socket listening on loopback `port` (Linux /proc);
    True when that cannot be told (no /proc). Something else answering /healthz on a port
    taken under the gateway must not pass for the gateway; nor may a gateway that has
    just exited on that port (its /proc entry gone: it holds nothing)."""
    inodes = set()
    try:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    except (OSError, IndexError, ValueError):
        return True
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(fd) in inodes:
                return True
    return False


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


class PortTaken(RuntimeError):
    pass


class GatewayProcess:
    """`gateway serve` as a process; its output goes to `log_path` (in the test's tmp dir),
    appended across restarts."""

    START_ATTEMPTS = 4  # the first start moves to a new port when its port is taken

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.port = int(env["GATEWAY_SERVER__PORT"])
        self.proc: ForkedProcess | None = None
        self.started = False  # once up, clients know its URL: a restart keeps the port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ops_url(self) -> str:
        """The operations listener: /metrics and /readyz live there only."""
        return f"http://{self.env['GATEWAY_SERVER__METRICS_LISTEN']}"

    @property
    def base(self) -> str:
        """Where the application is mounted: the URL plus any configured path prefix."""
        return self.url + self.env.get("GATEWAY_SERVER__PATH_PREFIX", "")

    async def start(self, timeout: float = 30) -> "GatewayProcess":
        """Start and wait for /healthz, in a thread: the test's loop (its webhook
        receiver, its SMTP server) keeps running meanwhile."""
        await asyncio.to_thread(self._start, timeout)
        return self

    async def stop(self) -> None:
        """SIGTERM, and wait for the exit (SIGKILL after 15 s)."""
        await asyncio.to_thread(self._stop)

    async def kill(self) -> None:
        await asyncio.to_thread(self._kill)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _start(self, timeout: float) -> None:
        for attempt in range(1, self.START_ATTEMPTS + 1):
            try:
                self._start_once(timeout)
            except PortTaken as exc:
                if self.started or attempt == self.START_ATTEMPTS:
                    raise RuntimeError(
                        f"{exc} (attempt {attempt}"
                        f"{'; a restart keeps its port' if self.started else ''})"
                    ) from None
                self._move_to(free_port())
                continue
            self.started = True
            return
        raise AssertionError("unreachable")

    def _move_to(self, port: int) -> None:
        """The same gateway on another port: server port and public URL both follow."""
        old = f"127.0.0.1:{self.port}"
        self.env["GATEWAY_SERVER__PORT"] = str(port)
        public = self.env.get("GATEWAY_SERVER__PUBLIC_URL", "")
        if f"//{old}" in public:
            self.env["GATEWAY_SERVER__PUBLIC_URL"] = public.replace(
                f"//{old}", f"//127.0.0.1:{port}", 1)
        self.port = port

    def _start_once(self, timeout: float) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            log.write(f"--- gateway serve on port {self.port} ---\n".encode())
            log.flush()
        # Forked from the warm parent (no two seconds of imports per start), a process
        # of its own all the same: the tests signal, kill and restart it.
        self.proc = ForkedProcess(["serve"], {**os.environ, **self.env}, self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                said = self._log_since(offset)
                if "address already in use" in said.lower():
                    raise PortTaken(f"gateway: port {self.port} is taken")
                raise RuntimeError(f"gateway exited {code}; last lines of {self.log_path}:\n"
                                   f"{_tail(said)}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=1):
                    pass
            except OSError:
                time.sleep(0.1)
                continue
            if _listening_pid_owns(self.proc.pid, self.port):
                return
            time.sleep(0.1)  # something else answers on this port; ours will exit
        self._stop()  # never leave a half-started gateway behind
        raise RuntimeError(f"gateway did not become healthy in {timeout:.0f}s; last lines of "
                           f"{self.log_path}:\n{_tail(self._log_since(offset))}")

    def _kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def _stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def doc(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result

    @property
    def type(self) -> str:
        return str(self.doc["type"])


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # longer than the gateway's timeout: the attempt times out


@dataclass
class Receiver:
    """A provisioning system on loopback. `script` gives the answer to each successive
    request (a status or a Reply; then 200), to simulate a flapping receiver."""

    script: list[int | Reply] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    attempts: list[Delivery] = field(default_factory=list)
    port: int = 0  # bound to port 0 on start and read back: no port race at all
    attempt_times: list[float] = field(default_factory=list)
    redirected_hits: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def _handle(self, request: web.Request) -> web.Response:
        delivery = Delivery(dict(request.headers), await request.read())
        self.attempts.append(delivery)
        self.attempt_times.append(time.monotonic())
        step = self.script.pop(0) if self.script else 200
        reply = step if isinstance(step, Reply) else Reply(step)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if 200 <= reply.status < 300:
            self.deliveries.append(delivery)
        return web.Response(status=reply.status, headers=reply.headers)

    async def _elsewhere(self, request: web.Request) -> web.Response:
        self.redirected_hits += 1
        return web.Response(status=200)

    async def start(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        app.router.add_route("*", "/elsewhere", self._elsewhere)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", self.port))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def of_type(self, type_: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.type == type_]

    async def wait_for(self, type_: str, timeout: float = 30) -> Delivery:
        await eventually(lambda: bool(self.of_type(type_)), timeout, f"no {type_} webhook")
        return self.of_type(type_)[0]


async def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        await asyncio.sleep(0.1)


class Api:
    """A thin JSON client that remembers every secret it handled, for the log checks."""

    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base = base
        self.http = http
        self.secrets: set[str] = set()
        self.cookie_names: set[str] = set()

    async def call(
        self, method: str, path: str, body: Any = None, token: str | None = None,
        raw: bytes | None = None, headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"headers": hdrs}
        if raw is not None:
            kwargs["data"] = raw
            hdrs.setdefault("Content-Type", "application/json")
        elif body is not None:
            kwargs["json"] = body
        async with self.http.request(method, self.base + path, **kwargs) as resp:
            text = await resp.text()
            for cookie in resp.cookies.values():
                self.cookie_names.add(cookie.key)
                self.secrets.add(cookie.value)
            doc = json.loads(text) if text else {}
            return resp.status, doc, dict(resp.headers)

    async def fetch(self, path: str, token: str | None = None,
                    headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
        """A GET whose answer is not JSON (exports, CSV)."""
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        async with self.http.get(self.base + path, headers=hdrs) as resp:
            return resp.status, await resp.read(), dict(resp.headers)

    async def ok(self, method: str, path: str, body: Any = None, token: str | None = None
                 ) -> dict[str, Any]:
        status, doc, _ = await self.call(method, path, body, token)
        assert status < 400, (status, doc)
        return doc
