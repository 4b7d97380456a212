"""The suite's monero-wallet-rpc processes generate their throwaway RSA key once per
process and reuse it (tests/support/small_rsa.c says why; the name is for the small cost,
the key keeps the size asked for): the preload library, built once per checkout with the
C compiler `make setup` installs, and the environment that loads it."""

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("small_rsa.c")
BUILT = Path(__file__).resolve().parents[2] / "var" / "test-shims" / "small_rsa.so"


def library() -> Path:
    """The built library; built now when missing or older than its source. Raises with
    the compiler's message when it cannot be built: a suite that quietly ran without it
    would take minutes longer."""
    if BUILT.exists() and BUILT.stat().st_mtime >= SOURCE.stat().st_mtime:
        return BUILT
    BUILT.parent.mkdir(parents=True, exist_ok=True)
    with (BUILT.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers start together
        if BUILT.exists() and BUILT.stat().st_mtime >= SOURCE.stat().st_mtime:
            return BUILT
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise RuntimeError("no C compiler (cc) for tests/support/small_rsa.c: "
                               "run `make setup`")
        partial = BUILT.with_suffix(f".{os.getpid()}.tmp")
        done = subprocess.run(
            [compiler, "-shared", "-fPIC", "-O2", "-o", str(partial), str(SOURCE), "-ldl"],
            capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"building {SOURCE.name} failed:\n{done.stderr}")
        partial.replace(BUILT)
    return BUILT


def environment() -> dict[str, str]:
    """Extra environment for a process whose monero-wallet-rpc children should load it."""
    return {"LD_PRELOAD": str(library())}
