"""`gateway serve` inside the test's own process and event loop.

What `gateway serve` runs is `build(settings)` and `build_app(gw)` (whose cleanup context
starts the operations and staff listeners and every background task: watchers, delivery
worker, sweeper, retention, billing, backups, mail). This class runs exactly that on a
real loopback socket, so a test talks HTTP to the real application, but starts in
milliseconds instead of seconds and can inject a clock or followers (`Overrides`). What
only a process shows (start-up checks, SIGTERM, SIGKILL, TLS from the command line) stays
with `GatewayProcess`, which has the same interface."""

import logging
import socket
from pathlib import Path
from typing import IO

from aiohttp import web

from gateway import logs
from gateway.bootstrap import Gateway, Overrides, build, build_app
from gateway.config import load
from tests.support.nodes import free_port


class InProcessGateway:
    def __init__(self, env: dict[str, str], log_path: Path,
                 overrides: Overrides | None = None) -> None:
        self.env = env
        self.log_path = log_path
        self.overrides = overrides
        self.port = int(env["GATEWAY_SERVER__PORT"])
        self.gw: Gateway | None = None
        self._runner: web.AppRunner | None = None
        self._handler: logging.Handler | None = None
        self._stream: IO[str] | None = None
        self._level = logging.WARNING
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
        return self.url + self.env.get("GATEWAY_SERVER__PATH_PREFIX", "")

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self, timeout: float = 30) -> "InProcessGateway":
        """Build from `env` (read again: a test may have changed it) and listen. The
        public socket is bound before the build, so nothing can take the port between."""
        assert self._runner is None, "already running"
        sock = self._bind()
        self._open_log()
        try:
            settings = load(None, self.env)
            self.gw = build(settings, overrides=self.overrides)
            await self.gw.check_schema()
            runner = web.AppRunner(build_app(self.gw), access_log=None)
            await runner.setup()  # the cleanup context: listeners and background tasks
            self._runner = runner
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await self.stop()
            raise
        self.started = True
        return self

    def _bind(self) -> socket.socket:
        """The public socket. Before the first start a port taken by something outside
        `free_port`'s leases moves the gateway (and its public URL) to another one."""
        for _ in range(4):
            sock = socket.socket()
            # As aiohttp's own sites: a restart binds past connections in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", self.port))
                return sock
            except OSError:
                sock.close()
                if self.started:
                    raise
                old, self.port = self.url, free_port()
                self.env["GATEWAY_SERVER__PORT"] = str(self.port)
                public = self.env.get("GATEWAY_SERVER__PUBLIC_URL", "")
                self.env["GATEWAY_SERVER__PUBLIC_URL"] = public.replace(old, self.url, 1)
        raise RuntimeError(f"no free port for the gateway after 4 tries (last {self.port})")

    async def stop(self) -> None:
        """As SIGTERM does: background tasks cancelled and awaited, listeners closed."""
        runner, self._runner = self._runner, None
        try:
            if runner is not None:
                await runner.cleanup()
            elif self.gw is not None:
                await self.gw.aclose()
        finally:
            self.gw = None
            self._close_log()

    async def kill(self) -> None:
        raise NotImplementedError("an in-process gateway cannot be killed: "
                                  "ask make_stack for process=True")

    def log(self) -> str:
        if self._stream is not None:
            self._stream.flush()
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _open_log(self) -> None:
        # The same redacting handler `gateway serve` installs, at the level it is
        # configured with; appended across restarts like the process's log.
        self._stream = self.log_path.open("a")
        root = logging.getLogger()
        self._level = root.level
        self._handler = logs.attach(self._stream, self.env.get("GATEWAY_SERVER__LOG_LEVEL",
                                                               "INFO"))

    def _close_log(self) -> None:
        if self._handler is not None:
            root = logging.getLogger()
            root.removeHandler(self._handler)
            root.setLevel(self._level)
            self._handler = None
        if self._stream is not None:
            self._stream.close()
            self._stream = None
