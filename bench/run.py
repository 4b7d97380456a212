"""`make bench`: runs every benchmark module in turn (each prints its own table: a median
of several runs beside a baseline measured in the same run), then one line per
benchmark: `P<n> <name> <measured> <goal> met|not met`. Modules report through a last
line `RESULT <P-number or -> <name> <measured> <goal> <verdict>`.
Run: `make bench` or `.venv/bin/python bench/run.py [name ...]`."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUDGET_SECONDS = 600  # the whole run


@dataclass(frozen=True)
class Bench:
    number: str  # "P5"; "-" for a measurement without a goal
    name: str
    script: str | None  # None: not built yet
    args: tuple[str, ...] = ()
    timeout: float = 300


BENCHES = (
    Bench("P1", "block-scan", "block_scan.py"),
    Bench("P2", "payments-per-block", "block.py", ("2000",)),
    Bench("P3", "http", "api_http.py"),
    Bench("P4", "detection-latency", "detection_latency.py", ("50",)),
    Bench("P5", "webhook-throughput", "webhooks.py", ("4000", "--postgresql")),
    Bench("P6", "scale", "scale.py", ("1000000",)),
    Bench("P7", "checkout-streams", "streams.py", ("1000",)),
    Bench("-", "derivation", "derivation.py"),
    Bench("-", "backup-stream", "backup_stream.py"),
)


def run(bench: Bench) -> str:
    if bench.script is None:
        return f"{bench.number} {bench.name} - - not built yet"
    print(f"=== {bench.number} {bench.name}: bench/{bench.script} {' '.join(bench.args)}",
          flush=True)
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, str(HERE / bench.script), *bench.args],
                              stdout=subprocess.PIPE, text=True, timeout=bench.timeout)
    except subprocess.TimeoutExpired:
        return f"{bench.number} {bench.name} - - not met (timed out after {bench.timeout:.0f} s)"
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = line.removeprefix("RESULT ")
        else:
            print(line)
    print(f"({time.monotonic() - started:.0f} s)", flush=True)
    if proc.returncode != 0 or result is None:
        return f"{bench.number} {bench.name} - - not met (exit {proc.returncode})"
    return result


def main() -> int:
    wanted = set(sys.argv[1:])
    started = time.monotonic()
    lines = [run(b) for b in BENCHES if not wanted or b.name in wanted or b.number in wanted]
    print(f"=== summary ({time.monotonic() - started:.0f} s; budget {BUDGET_SECONDS} s)")
    for line in lines:
        print(line)
    return 1 if any(line.endswith("not met") or "not met (" in line for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
