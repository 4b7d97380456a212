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
REPEATS = 7
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
    blocks = {"none": build_block(sample, 0, seed=2), "paid": build_block(sample, PAYMENTS)}
    hexes = {k: v.raw.hex() for k, v in blocks.items()}
    for key, block in blocks.items():
        found = scan_block(bytes.fromhex(hexes[key]), watched)
        assert sorted((h.txid, h.n, h.script, h.value) for h in found.hits) == sorted(
            block.paid)

    runs: dict[str, list[float]] = {}
    for _ in range(REPEATS):  # interleaved, so a busy moment hits every row alike
        for key, block in blocks.items():
            raw, hexed, doc = block.raw, hexes[key], block.verbose_json
            runs.setdefault(f"orjson-{key}", []).append(timed(lambda d=doc: orjson.loads(d)))
            runs.setdefault(f"scan-{key}", []).append(
                timed(lambda r=raw: scan_block(r, watched)))
            runs.setdefault(f"hex-{key}", []).append(
                timed(lambda h=hexed: scan_block(bytes.fromhex(h), watched)))
            if len(runs.setdefault(f"json-{key}", [])) < 3:
                runs[f"json-{key}"].append(timed(
                    lambda d=doc: json.loads(d, parse_float=Decimal)))
    ms = {k: statistics.median(v) * 1e3 for k, v in runs.items()}
    fastest = {k: min(v) * 1e3 for k, v in runs.items()}
    paid = blocks["paid"]
    print(f"block scan: {paid.tx_count} transactions, {paid.output_count} outputs, "
          f"{len(paid.raw) / 1e6:.2f} MB raw ({len(paid.verbose_json) / 1e6:.1f} MB as "
          f"verbosity-2 JSON), watched set of {WATCHED:,} scripts; median of {REPEATS} runs")
    print(f"{'what':<58}{'ms':>8}{'ratio to orjson':>18}{'fastest run, ms':>17}")
    for key, title in (("none", "a block paying no watched script"),
                       ("paid", f"a block paying {PAYMENTS} watched scripts")):
        base = ms[f"orjson-{key}"]
        print(title)
        for label, row in (("  orjson.loads of its JSON (baseline)", "orjson"),
                           ("  json.loads with Decimal (the old path)", "json"),
                           ("  raw scan of the bytes (rest = true)", "scan"),
                           ("  hex -> bytes -> raw scan (over JSON-RPC)", "hex")):
            value = ms[f"{row}-{key}"]
            print(f"{label:<58}{value:>8.2f}{value / base:>18.3f}"
                  f"{fastest[f'{row}-{key}']:>17.2f}")
    print(f"watched set, {WATCHED:,} scripts, resident: KeySet {keyset_mb:.1f} MB "
          f"(table {watched.nbytes() / 1e6:.1f} MB), plain set {set_mb:.1f} MB "
          f"(ratio {keyset_mb / set_mb:.2f})")
    summary = []
    met = keyset_mb <= GOAL_MB
    for key in ("none", "paid"):
        # The block as bytes (REST, `rest = true`); over JSON-RPC the hex decoding adds
        # the difference between the two rows.
        measured, ratio = ms[f"scan-{key}"], ms[f"scan-{key}"] / ms[f"orjson-{key}"]
        met = met and measured <= GOAL_MS and ratio <= GOAL_RATIO
        summary.append(f"{key}:{measured:.1f}ms,{ratio:.2f}x")
    print(f"RESULT P1 block-scan {';'.join(summary)};{keyset_mb:.0f}MB "
          f"<={GOAL_MS:.0f}ms,<={GOAL_RATIO}x,<={GOAL_MB:.0f}MB {'met' if met else 'not met'}")


if __name__ == "__main__":
    main()
