"""Backup encryption throughput: the streaming AES-256-GCM writer against a plain copy of
the same bytes, in the same run (the ratio is what matters on shared machines), plus the
peak memory of encrypting, which must not grow with the input.
Run: `make bench` or `.venv/bin/python bench/backup_stream.py [MiB]`."""

import io
import os
import shutil
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.adapters.backup.stream import decrypt, encrypt


class Sink(io.RawIOBase):
    """Counts bytes and keeps none, so memory measures the cipher, not the output."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.size += len(b)
        return len(b)


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    data = os.urandom(mib << 20)
    key = os.urandom(32)

    copy = best_of(lambda: shutil.copyfileobj(io.BytesIO(data), Sink(), 1 << 20))
    seal = best_of(lambda: encrypt(io.BytesIO(data), Sink(), key))  # type: ignore[arg-type]
    sealed = io.BytesIO()
    encrypt(io.BytesIO(data), sealed, key)
    opened = best_of(lambda: decrypt(io.BytesIO(sealed.getvalue()), Sink(), key))  # type: ignore[arg-type]

    def peak(size: int) -> int:
        source = io.BytesIO(os.urandom(size))
        tracemalloc.start()
        encrypt(source, Sink(), key)  # type: ignore[arg-type]
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(4 << 20), peak(32 << 20)
    print(f"{mib} MiB: plain copy {mib / copy:.0f} MiB/s, encrypt {mib / seal:.0f} MiB/s "
          f"({seal / copy:.1f}x the copy's time), decrypt {mib / opened:.0f} MiB/s")
    print(f"peak memory while encrypting 4 MiB: {small >> 10} KiB, 32 MiB: {large >> 10} KiB "
          f"(ratio {large / small:.2f}; about 1 means memory does not grow with the size)")
    print(f"RESULT - backup-stream {seal / copy:.1f}x-copy-time,memory-{large / small:.2f}x "
          f"- (no goal)")


if __name__ == "__main__":
    main()
