"""`gateway` CLI commands run to completion as processes, forked from a warm parent
(tests/support/cli_zygote.py) instead of a fresh interpreter: the same process, exit
code and streams, without two seconds of imports per call.

A command a test must signal while it runs (`serve`, `demo`, an interrupted
`notify policy-change`) is still started with subprocess.Popen."""

import atexit
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What `python -m gateway.cli` puts in sys.argv.
ARGV0 = str(ROOT / "gateway" / "cli" / "__main__.py")


class _Zygote:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir = ""
        self.path = ""

    def ensure(self) -> str:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return self.path
            self._dir = tempfile.mkdtemp(prefix="cli-zygote-")
            self.path = os.path.join(self._dir, "socket")
            log = Path(self._dir) / "zygote.log"
            with log.open("wb") as err:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "tests.support.cli_zygote", self.path],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, cwd=ROOT)
            assert self._proc.stdout is not None
            line = self._proc.stdout.readline()  # "ready", or EOF when it failed
            if line.strip() != b"ready":
                raise RuntimeError(f"the CLI zygote did not start; {log}:\n"
                                   f"{log.read_text(errors='replace')[-3000:]}")
            atexit.register(self.close)
            return self.path

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.stdin is not None:
            proc.stdin.close()  # its signal to exit
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


_zygote = _Zygote()


def _umask() -> int:
    """The calling process's umask, for the command (a test may set a strict or loose one);
    read from /proc, as setting it to read it back would race the process's threads."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise RuntimeError("no Umask in /proc/self/status")


def run_gateway(args: list[str], env: dict[str, str], *, input: str = "",
                timeout: float = 60, cwd: str | os.PathLike[str] | None = None,
                ) -> subprocess.CompletedProcess[str]:
    """`python -m gateway.cli *args` with exactly `env` as its environment, run to its end;
    the result as subprocess.run(capture_output=True, text=True) gives it. Raises
    subprocess.TimeoutExpired (the command killed) after `timeout` seconds."""
    path = _zygote.ensure()
    request = {"args": args, "env": env, "input": input, "argv0": ARGV0,
               "cwd": str(cwd if cwd is not None else os.getcwd()), "umask": _umask()}
    command = [sys.executable, "-m", "gateway.cli", *args]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(path)
        conn.sendall(json.dumps(request).encode() + b"\n")
        reader = conn.makefile("rb")
        pid = int(json.loads(reader.readline())["pid"])
        try:
            line = reader.readline()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            raise subprocess.TimeoutExpired(command, timeout) from None
    if not line:
        raise RuntimeError(f"{' '.join(args)}: the command's process ended without a "
                           "result (killed?)")
    result = json.loads(line)
    return subprocess.CompletedProcess(command, int(result["returncode"]),
                                       str(result["stdout"]), str(result["stderr"]))



class ForkedProcess:
    """A long-running `gateway` command (`serve`) forked from the warm parent, with the
    part of subprocess.Popen's interface the suite uses: pid, poll, wait, send_signal,
    terminate, kill, returncode. Its output is appended to `log`."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = [sys.executable, "-m", "gateway.cli", *args]
        self.returncode: int | None = None
        self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._conn.settimeout(30)
        self._conn.connect(_zygote.ensure())
        request = {"args": args, "env": env, "argv0": ARGV0, "cwd": os.getcwd(),
                   "log": str(log), "umask": _umask()}
        self._conn.sendall(json.dumps(request).encode() + b"\n")
        self._reader = self._conn.makefile("rb")
        self.pid = int(json.loads(self._reader.readline())["pid"])

    def poll(self) -> int | None:
        if self.returncode is None:
            ready, _, _ = select.select([self._conn], [], [], 0)
            if ready:
                self._finish()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            ready, _, _ = select.select([self._conn], [], [], timeout)
            if not ready:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self._finish()
        assert self.returncode is not None
        return self.returncode

    def _finish(self) -> None:
        self._conn.settimeout(None)
        line = self._reader.readline()
        # No report: the child that waited for it was killed with it (never by the suite).
        self.returncode = int(json.loads(line)["returncode"]) if line else -signal.SIGKILL
        self._reader.close()
        self._conn.close()

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
