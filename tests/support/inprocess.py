"""`gateway serve` inside the test's own process, on an event loop of its own.

What `gateway serve` runs is `build(settings)` and `build_app(gw)` (whose cleanup contexts
start the operations and staff listeners and every background task: watchers, delivery
worker, sweeper, retention, billing, backups, mail). This class runs exactly that on a
real loopback socket, so a test talks HTTP to the real application, but starts in
milliseconds instead of seconds and can inject a clock or followers (`Overrides`).

The gateway's loop runs in a thread of its own, as it would in a process of its own: a
test that blocks its own loop (a CLI command through `subprocess.run`, a Selenium call,
schemathesis) must not freeze the server it is talking to. What only a process shows
(start-up checks, SIGTERM, SIGKILL, TLS from the command line) stays with
`GatewayProcess`, which has the same interface."""

import asyncio
import logging
import socket
import sys
import threading
import traceback
from collections.abc import Coroutine
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, TypeVar

from aiohttp import web

from gateway import logs
from gateway.adapters.passwords import HashCost
from gateway.bootstrap import Gateway, Overrides, build, build_app, startup_problems
from gateway.config import load
from tests.support.nodes import free_port

T = TypeVar("T")
# The loggers of the gateway's own code; any other record reaches this gateway's log only
# when it was written on the gateway's own thread (aiohttp's server, say), never the test's
# (Selenium logs the passwords it types).
OWN_LOGGERS = ("gateway", "chains", "webhooks")
STOP_SECONDS = 30.0  # SIGTERM's grace as a loaded 2-core machine needs it


def _chain(coro: Any) -> str:
    """Where a coroutine waits: every frame down its `await` chain, and what the last
    one awaits (a Future from a thread, say). `Task.get_stack` gives only the outermost
    frame of a suspended coroutine, which names nothing."""
    where: list[str] = []
    last: Any = None
    while coro is not None:
        frame = (getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
                 or getattr(coro, "ag_frame", None))
        if frame is None:
            # An async generator's step (a cleanup context's body): it is `self.gen` of
            # the `__aexit__` frame that awaits it.
            gen = getattr(last.f_locals.get("self"), "gen", None) if last else None
            if gen is None or getattr(gen, "ag_frame", None) is None or gen is coro:
                break
            coro = gen
            continue
        where.append(f"{frame.f_code.co_name} ({frame.f_code.co_filename.rsplit('/', 2)[-1]}"
                     f":{frame.f_lineno})")
        last = frame
        coro = (getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
                or getattr(coro, "ag_await", None))
    if coro is not None:
        where.append(repr(coro)[:200])
    return " -> ".join(where)


async def _describe_tasks() -> str:
    """Every task on this loop but the caller, with where it waits, and what every other
    thread is doing (an executor job, a database driver's thread)."""
    lines = []
    for task in asyncio.all_tasks():
        if task is asyncio.current_task():
            continue
        lines.append(f"  {task.get_name()}: {_chain(task.get_coro()) or task!r}")
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        if ident == threading.get_ident():
            continue
        stack = traceback.extract_stack(frame)[-3:]
        lines.append(f"  thread {names.get(ident, ident)}: " + " <- ".join(
            f"{f.name} ({f.filename.rsplit('/', 2)[-1]}:{f.lineno})" for f in reversed(stack)))
    return "\n".join(lines) or "  (no task)"


# argon2id at a cost of about a millisecond instead of OWASP's 25 ms: a fifth of the CPU
# the suite's in-process gateways spent went to hashing the passwords of test accounts
# (py-spy over a whole run). Same library, same code path; a test that measures the
# hashing itself (the hash pool's cap, the flood, the cost of a check) asks for
# `Overrides(hash_cost=HashCost())`, and every gateway in a process of its own (the load
# and kill tests, the CLI) hashes at the production cost.
QUICK_HASHING = HashCost(time_cost=1, memory_kib=1024)


def quick_hashing(overrides: Overrides | None) -> Overrides:
    """`overrides` with the quick hash, unless it names a cost of its own."""
    if overrides is None:
        return Overrides(hash_cost=QUICK_HASHING)
    if overrides.hash_cost is None:
        return replace(overrides, hash_cost=QUICK_HASHING)
    return overrides


class InProcessGateway:
    def __init__(self, env: dict[str, str], log_path: Path,
                 overrides: Overrides | None = None) -> None:
        self.env = env
        self.log_path = log_path
        self.overrides = quick_hashing(overrides)
        self.port = int(env["GATEWAY_SERVER__PORT"])
        self.gw: Gateway | None = None
        self._runner: web.AppRunner | None = None
        self._handler: logging.Handler | None = None
        self._stream: IO[str] | None = None
        self._level = logging.WARNING
        self.started = False  # once up, clients know its URL: a restart keeps the port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

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
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name=f"gateway-{self.port}", daemon=True)
        self._thread.start()
        try:
            await asyncio.wait_for(self.within(self._serve(sock)), timeout)
        except BaseException:
            sock.close()
            await self.stop()
            raise
        self.started = True
        return self

    async def _serve(self, sock: socket.socket) -> None:
        settings = load(None, self.env)
        # What `gateway serve` checks before it listens (the EVM nodes' chain id and token
        # decimals among them): a problem fails the start, a warning goes to the log.
        fatal, warnings = await startup_problems(settings)
        for line in warnings:
            logging.getLogger("gateway.serve").warning("%s", line)
        if fatal:
            raise RuntimeError("gateway would not start: " + "; ".join(fatal))
        self.gw = build(settings, overrides=self.overrides)
        await self.gw.check_schema()
        runner = web.AppRunner(build_app(self.gw), access_log=None)
        try:
            # The cleanup contexts: resources, listeners and background jobs.
            await runner.setup()
        except BaseException:
            # aiohttp does not unwind a failed start-up: close what did start (a
            # listener opened before another failed, the database) before saying so.
            await runner.cleanup()
            raise
        self._runner = runner
        await web.SockSite(runner, sock).start()

    async def within(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the gateway's loop; wait for it on the caller's."""
        assert self._loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def stop(self, timeout: float = STOP_SECONDS) -> None:
        """As SIGTERM does: background tasks cancelled and awaited, listeners closed. A
        stop that does not finish in `timeout` fails, naming the tasks still running (a
        process would be killed there, and the hang would go unseen)."""
        try:
            if self._loop is not None:
                try:
                    await asyncio.wait_for(self.within(self._shutdown()), timeout)
                except TimeoutError:
                    pending = await self.within(_describe_tasks())
                    raise AssertionError(
                        f"the gateway did not stop in {timeout:.0f} s; still running:\n"
                        f"{pending}") from None
        finally:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
            if loop is not None and thread is not None:
                loop.call_soon_threadsafe(loop.stop)
                await asyncio.to_thread(thread.join, 30)
                loop.close()
            self._close_log()

    async def _shutdown(self) -> None:
        runner, self._runner = self._runner, None
        try:
            if runner is not None:
                await runner.cleanup()
            elif self.gw is not None:
                await self.gw.aclose()
        finally:
            self.gw = None

    async def kill(self) -> None:
        raise NotImplementedError("an in-process gateway cannot be killed: "
                                  "ask make_stack for process=True")

    def log(self) -> str:
        if self._stream is not None:
            self._stream.flush()
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _own(self, record: logging.LogRecord) -> bool:
        return (record.name.split(".", 1)[0] in OWN_LOGGERS
                or (self._thread is not None and record.thread == self._thread.ident))

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

    def _open_log(self) -> None:
        # The same redacting handler `gateway serve` installs, at the level it is
        # configured with; appended across restarts like the process's log.
        self._stream = self.log_path.open("a")
        root = logging.getLogger()
        self._level = root.level
        self._handler = logs.attach(self._stream, self.env.get("GATEWAY_SERVER__LOG_LEVEL",
                                                               "INFO"))
        self._handler.addFilter(self._own)

    def _close_log(self) -> None:
        if self._handler is not None:
            root = logging.getLogger()
            root.removeHandler(self._handler)
            root.setLevel(self._level)
            self._handler = None
        if self._stream is not None:
            self._stream.close()
            self._stream = None
