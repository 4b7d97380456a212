"""Address derivation speed: our coincurve BIP32 path against bitcoinlib, measured in the
same run on the same machine, printed as a ratio (absolute numbers on shared machines
mean little). Run: `make bench` or `.venv/bin/python bench/derivation.py [N]`."""

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("BCL_DATA_DIR", tempfile.mkdtemp(prefix="bench-bcl-"))

from chains.hd import _branch
from chains.networks import NETWORKS
from chains.utxo import p2wpkh_destination
from tests.support.keys import random_xpub


def rate(fn: Callable[[int], object], n: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        _branch.cache_clear()
        started = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, time.perf_counter() - started)
    return n / best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    from bitcoinlib.encoding import pubkeyhash_to_addr_bech32
    from bitcoinlib.keys import HDKey

    xpub = random_xpub()
    net = NETWORKS["litecoin-regtest"]
    reference = HDKey(xpub).child_public(0)

    def ours(i: int) -> str:
        return p2wpkh_destination(xpub, i, net).address

    def baseline(i: int) -> str:
        child = reference.child_public(i)
        return str(pubkeyhash_to_addr_bech32(child.hash160, prefix=net.hrp, witver=0))

    assert all(ours(i) == baseline(i) for i in range(20)), "implementations disagree"
    base = rate(baseline, max(n // 4, 50))
    mine = rate(ours, n)
    print(f"bitcoinlib (baseline): {base:10.0f} addresses/s")
    print(f"gateway (coincurve):   {mine:10.0f} addresses/s")
    print(f"ratio: {mine / base:.1f}x the baseline")
    print(f"RESULT - derivation {mine / base:.1f}x-bitcoinlib - (no goal)")


if __name__ == "__main__":
    main()
