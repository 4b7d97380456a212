"""P1 block scan: a synthetic mainnet-size block (4,000 transactions, 10,000 outputs, real
serialization with segwit) against 1,000,000 watched scripts, as the UTXO watcher reads it
(`getblock <hash> 0` hex -> bytes -> chains.utxo.rawblock.scan_block with a KeySet), beside
`orjson.loads` of the same block's verbosity-2 JSON (and the old path, `json.loads` with
Decimal, for information), measured in the same run. Also the watched set's resident
memory, beside a plain Python set of the same scripts.
Run: `make bench` or `.venv/bin/python bench/block_scan.py`."""

import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from synthetic_block import build_block, p2wpkh

from chains.utxo.rawblock import scan_block
from chains.watchset import KeySet

WATCHED = 1_000_000
PAYMENTS = 20
REPEATS = 9
GOAL_MS = 15.0
GOAL_RATIO = 0.15
GOAL_MB = 40.0


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def scripts(seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    for _ in range(WATCHED):
        yield p2wpkh(rng)


def timed(fn: Callable[[], object]) -> float:
    """One call's wall time, garbage collector off (as `timeit` does), the result freed
    outside the measurement."""
    gc.disable()
    try:
        started = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - started
    finally:
        gc.enable()
    del result
    return elapsed


def main() -> None:
    gc.collect()
    before = rss()
    watched = KeySet(scripts(11))
    gc.collect()
    keyset_mb = (rss() - before) / 1e6
    before = rss()
    plain = set(scripts(11))
    gc.collect()
    set_mb = (rss() - before) / 1e6
    del plain
    gc.collect()

    rng = random.Random(11)
    sample = [p2wpkh(rng) for _ in range(1000)]  # the first scripts of the watched set
    block = build_block(sample, PAYMENTS)
    hex_block = block.raw.hex()
    found = scan_block(bytes.fromhex(hex_block), watched)
    assert sorted((h.txid, h.n, h.script, h.value) for h in found.hits) == sorted(block.paid)

    runs: dict[str, list[float]] = {"scan": [], "hex+scan": [], "orjson": [], "json": []}
    for _ in range(REPEATS):  # interleaved, so a busy moment hits every row alike
        runs["orjson"].append(timed(lambda: orjson.loads(block.verbose_json)))
        runs["scan"].append(timed(lambda: scan_block(block.raw, watched)))
        runs["hex+scan"].append(timed(lambda: scan_block(bytes.fromhex(hex_block), watched)))
        if len(runs["json"]) < 3:
            runs["json"].append(timed(lambda: json.loads(block.verbose_json,
                                                         parse_float=Decimal)))
    ms = {k: statistics.median(v) * 1e3 for k, v in runs.items()}
    base = ms["orjson"]
    print(f"block scan: {block.tx_count} transactions, {block.output_count} outputs, "
          f"{len(block.raw) / 1e6:.2f} MB raw ({len(block.verbose_json) / 1e6:.1f} MB as "
          f"verbosity-2 JSON), {PAYMENTS} paying the watched set of {WATCHED:,} scripts; "
          f"median of {REPEATS} runs")
    print(f"{'what':<50}{'ms':>8}{'ratio to orjson':>18}")
    rows = [
        ("orjson.loads of the JSON (baseline)", "orjson"),
        ("json.loads with Decimal (the old path)", "json"),
        ("raw scan (bytes -> watched outputs)", "scan"),
        ("hex -> bytes -> raw scan (what the watcher does)", "hex+scan"),
    ]
    for label, key in rows:
        print(f"{label:<50}{ms[key]:>8.2f}{ms[key] / base:>18.3f}")
    print(f"watched set, {WATCHED:,} scripts, resident: KeySet {keyset_mb:.1f} MB "
          f"(table {watched.nbytes() / 1e6:.1f} MB), plain set {set_mb:.1f} MB "
          f"(ratio {keyset_mb / set_mb:.2f})")
    measured, ratio = ms["hex+scan"], ms["hex+scan"] / base
    met = measured <= GOAL_MS and ratio <= GOAL_RATIO and keyset_mb <= GOAL_MB
    print(f"RESULT P1 block-scan {measured:.1f}ms,{ratio:.2f}x-orjson,{keyset_mb:.0f}MB "
          f"<={GOAL_MS:.0f}ms,<={GOAL_RATIO}x,<={GOAL_MB:.0f}MB {'met' if met else 'not met'}")


if __name__ == "__main__":
    main()
