"""A synthetic mainnet-size block in real serialization (segwit), and the verbosity-2 JSON
Bitcoin Core would give for it: for the block-scan benchmark (P1) and the parser's tests."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def _dsha(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def p2wpkh(rng: random.Random) -> bytes:
    return b"\x00\x14" + rng.randbytes(20)


def _other_script(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.15:
        return b"\x76\xa9\x14" + rng.randbytes(20) + b"\x88\xac"  # P2PKH
    if kind < 0.30:
        return b"\xa9\x14" + rng.randbytes(20) + b"\x87"  # P2SH
    if kind < 0.45:
        return b"\x51\x20" + rng.randbytes(32)  # P2TR
    if kind < 0.55:
        return b"\x00\x20" + rng.randbytes(32)  # P2WSH
    return p2wpkh(rng)


@dataclass(frozen=True)
class SyntheticBlock:
    raw: bytes
    verbose_json: bytes  # what `getblock <hash> 2` would answer (the result document)
    paid: list[tuple[str, int, bytes, int]]  # (txid, n, script, value) of watched outputs
    tx_count: int
    output_count: int


def build_block(watched: list[bytes], pays: int, tx_count: int = 4000,
                output_count: int = 10_000, seed: int = 1) -> SyntheticBlock:
    """`tx_count` transactions (a coinbase first), `output_count` outputs in all, `pays`
    of them to scripts drawn from `watched`. Inputs spend P2WPKH (a 72-byte signature and
    a 33-byte key in the witness) or legacy (a scriptSig), one to three per transaction."""
    rng = random.Random(seed)
    per_tx = [1] * tx_count
    for _ in range(output_count - tx_count):
        per_tx[rng.randrange(tx_count)] += 1
    paying = set(rng.sample(range(1, output_count), pays))
    txs_raw: list[bytes] = []
    txs_doc: list[dict[str, object]] = []
    paid: list[tuple[str, int, bytes, int]] = []
    out_no = 0
    for t in range(tx_count):
        coinbase = t == 0
        n_in = 1 if coinbase else rng.choice((1, 1, 2, 2, 3))
        segwit = coinbase or rng.random() < 0.8
        vin = b""
        witness = b""
        vin_doc = []
        for _ in range(n_in):
            if coinbase:
                prev, index, sig = b"\x00" * 32, 0xFFFFFFFF, rng.randbytes(24)
                stack = [b"\x00" * 32]
            elif segwit:
                prev, index, sig = rng.randbytes(32), rng.randrange(4), b""
                stack = [rng.randbytes(72), b"\x02" + rng.randbytes(32)]
            else:
                prev, index, sig = rng.randbytes(32), rng.randrange(4), rng.randbytes(106)
                stack = []
            vin += prev + index.to_bytes(4, "little") + _varint(len(sig)) + sig + b"\xff" * 4
            witness += _varint(len(stack)) + b"".join(_varint(len(s)) + s for s in stack)
            item: dict[str, object] = (
                {"coinbase": sig.hex()} if coinbase else
                {"txid": prev[::-1].hex(), "vout": index,
                 "scriptSig": {"asm": sig.hex(), "hex": sig.hex()}})
            if stack:
                item["txinwitness"] = [s.hex() for s in stack]
            item["sequence"] = 4294967295
            vin_doc.append(item)
        vout = b""
        vout_doc = []
        found = []
        for n in range(per_tx[t]):
            if out_no in paying:
                script = rng.choice(watched)
            else:
                script = _other_script(rng)
            value = rng.randrange(1, 5_000_000_000)
            if out_no in paying:
                found.append((n, script, value))
            out_no += 1
            vout += value.to_bytes(8, "little") + _varint(len(script)) + script
            vout_doc.append({"value": float(f"{value / 1e8:.8f}"), "n": n, "scriptPubKey": {
                "asm": "0 " + script[2:].hex(), "hex": script.hex(),
                "type": "witness_v0_keyhash"}})
        body = _varint(n_in) + vin + _varint(per_tx[t]) + vout
        version, locktime = (2).to_bytes(4, "little"), (0).to_bytes(4, "little")
        stripped = version + body + locktime
        full = (version + b"\x00\x01" + body + witness + locktime) if segwit else stripped
        txid = _dsha(stripped)[::-1].hex()
        paid.extend((txid, n, s, v) for n, s, v in found)
        txs_raw.append(full)
        txs_doc.append({"txid": txid, "hash": _dsha(full)[::-1].hex(), "version": 2,
                        "size": len(full), "vsize": len(stripped), "weight": 4 * len(stripped),
                        "locktime": 0, "vin": vin_doc, "vout": vout_doc, "hex": full.hex()})
    header = ((0x20000000).to_bytes(4, "little") + rng.randbytes(32) + rng.randbytes(32)
              + (1_700_000_000).to_bytes(4, "little") + b"\xff\xff\x7f\x20"
              + (0).to_bytes(4, "little"))
    raw = header + _varint(tx_count) + b"".join(txs_raw)
    doc = {"hash": _dsha(header)[::-1].hex(), "confirmations": 1, "size": len(raw),
           "height": 800_000, "version": 0x20000000, "time": 1_700_000_000,
           "previousblockhash": header[4:36][::-1].hex(), "nTx": tx_count, "tx": txs_doc}
    return SyntheticBlock(raw, json.dumps(doc).encode(), paid, tx_count, output_count)
