"""A warm parent for the suite's `gateway` CLI calls (`python -m tests.support.cli_zygote
SOCKET`), run by tests/support/cli.py.

Each `python -m gateway.cli ...` paid about two CPU seconds of imports before doing
anything: with a few hundred calls per `make test`, a quarter of the suite's CPU time on
two cores. This process imports the CLI and everything its commands load once, then
forks a child per call. The child is a real process of its own, as the command would
be in production: its own environment, working directory, standard streams, exit code
and pid (a test may kill it); only the imports are inherited.

The parent stays single-threaded (forking is safe) and builds nothing at import time
(the project's rule), so a child starts as clean as a fresh interpreter. It exits when
its standard input closes (the pytest process that started it ended)."""

import atexit
import contextlib
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import tempfile
import threading
import traceback
from typing import Any

# What the commands import on their first use; imported here, once, not per call.
WARM = ("gateway.cli", "gateway.bootstrap", "gateway.families", "chains.utxo.family",
        "chains.evm.family", "chains.monero.family", "alembic.command",
        "aiosqlite", "asyncpg")


def warm() -> None:
    for name in WARM:
        with contextlib.suppress(ImportError):  # a module moved: it is imported per call
            importlib.import_module(name)


def exit_code(exc: SystemExit) -> int:
    """The status a real interpreter would exit with for this SystemExit."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def run_command(request: dict[str, Any]) -> int:
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    os.umask(int(request["umask"]))  # files the command creates: as its caller's would be
    args = list(request["args"])
    sys.argv = [request["argv0"], *args]
    from gateway import cli

    try:
        code = int(cli.main(args))
    except SystemExit as exc:
        code = exit_code(exc)
    except BaseException:  # what the interpreter would print, exiting 1
        traceback.print_exc()
        code = 1
    # What the interpreter does on its way out, so that a command hanging there (a thread
    # left running, an atexit handler) hangs here too rather than going unseen.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    return code


def child(conn: socket.socket) -> None:
    """Runs one request and reports it on `conn`; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the command's own subprocesses
        reader = conn.makefile("rb")
        request = json.loads(reader.readline())
        if request.get("log"):
            code = spawn(conn, request)
            return
        conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
        streams = [tempfile.TemporaryFile() for _ in range(3)]
        streams[0].write(request.get("input", "").encode())
        streams[0].seek(0)
        for fd, stream in enumerate(streams):
            os.dup2(stream.fileno(), fd)
        code = run_command(request)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        import logging
        logging.shutdown()
        out, err = (_read(streams[1]), _read(streams[2]))
        conn.sendall(json.dumps({"returncode": code, "stdout": out, "stderr": err}).encode()
                     + b"\n")
    finally:
        os._exit(code if 0 <= code < 256 else 1)


def spawn(conn: socket.socket, request: dict[str, Any]) -> int:
    """A long-running command (`serve`) as a grandchild, its output appended to the
    request's log: this child waits for it and reports how it ended, as Popen.wait would
    (a negative signal number when it was killed), so the test may signal it freely."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setpgid(0, 0)  # a signal to the test's process group does not reach it
            devnull = os.open(os.devnull, os.O_RDONLY)
            log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            for fd, target in ((0, devnull), (1, log), (2, log)):
                os.dup2(target, fd)
            code = run_command(request)
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
        finally:
            os._exit(code if 0 <= code < 256 else 1)
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    returncode = os.waitstatus_to_exitcode(status)
    with contextlib.suppress(OSError):  # the test stopped listening
        conn.sendall(json.dumps({"returncode": returncode}).encode() + b"\n")
    return 0


def _read(stream: Any) -> str:
    stream.seek(0)
    return str(stream.read().decode("utf-8", errors="replace"))


def main() -> None:
    path = sys.argv[1]
    warm()
    # Children are reaped by the kernel: the parent never waits for a command.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    print("ready", flush=True)
    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ)
    selector.register(sys.stdin, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj is sys.stdin:
                if not os.read(sys.stdin.fileno(), 1024):
                    return  # the pytest process is gone
                continue
            conn, _ = server.accept()
            if os.fork() == 0:
                server.close()
                child(conn)
            conn.close()


if __name__ == "__main__":
    main()
