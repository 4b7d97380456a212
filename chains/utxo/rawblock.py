"""Serialized blocks and transactions (Bitcoin Core / Litecoin Core, `getblock <hash> 0`),
read for their outputs only. Pure functions, no I/O.

A block that may pay a watched script is walked once: inputs and witnesses are skipped by
their lengths, each output's script is looked up, and a transaction id (double SHA-256 of
the serialization without witness) is computed only for a transaction that pays a
watched script. With the gateway's `KeySet`, a block that cannot pay one is told apart
first by one regex pass over its bytes, without a walk (`_watched_in`). Amounts stay
integers (base units) throughout.

Litecoin's MWEB (extension blocks, active on regtest from height 432): a transaction may
carry the flag bit 8 after the segwit flag bit 1, followed by an optional MWEB part (a
byte 0 for none, as the block's integrating "HogEx" transaction has it), then the lock
time; after the block's transactions comes the MWEB block itself, which is never read
(its outputs are confidential; a peg-out to a canonical script is an output of the
HogEx). The txid of a transaction with a canonical part leaves the MWEB part out, like the
witness. A block whose transaction carries a non-empty MWEB part (Litecoin Core puts MWEB
data in the extension block, not in `vtx`; seen only in mempool transactions) raises
`Unsupported`, and the caller reads that block through verbose JSON instead."""

import hashlib
import re
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from chains.base import Watched
from chains.watchset import KeySet

HEADER_SIZE = 80
_WITNESS = 1
_MWEB = 8


class Unsupported(ValueError):
    """Valid data this reader does not walk (an MWEB transaction body inside a block)."""


@dataclass(frozen=True)
class Hit:
    txid: str
    n: int  # output index
    script: bytes
    value: int  # base units


@dataclass(frozen=True)
class RawBlock:
    hash: str
    parent_hash: str
    time: datetime  # the header's own timestamp
    hits: tuple[Hit, ...]
    tx_count: int


def _varint(b: bytes, pos: int) -> tuple[int, int]:
    first = b[pos]
    if first < 0xFD:
        return first, pos + 1
    if first == 0xFD:
        return int.from_bytes(b[pos + 1:pos + 3], "little"), pos + 3
    if first == 0xFE:
        return int.from_bytes(b[pos + 1:pos + 5], "little"), pos + 5
    return int.from_bytes(b[pos + 1:pos + 9], "little"), pos + 9


def _txid(*parts: bytes) -> str:
    return hashlib.sha256(hashlib.sha256(b"".join(parts)).digest()).digest()[::-1].hex()


def header_hash(raw: bytes) -> str:
    return hashlib.sha256(hashlib.sha256(raw[:HEADER_SIZE]).digest()).digest()[::-1].hex()


def _canonical_outputs(
    b: bytes, watched: Watched
) -> tuple[int, int, list[tuple[int, bytes, int]]]:
    """One serialized transaction read up to the end of its outputs: where its inputs
    start (after any segwit/MWEB marker), where its outputs end, and its watched outputs
    as (index, script, value)."""
    pos = 4  # version
    n_in = b[pos]
    if n_in == 0:  # segwit marker (and Litecoin's MWEB flag)
        flags = b[pos + 1]
        if flags == 0 or flags & ~(_WITNESS | _MWEB):
            raise ValueError(f"unknown transaction flags {flags:#x}")
        pos += 2
    body = pos
    n_in, pos = _varint(b, pos)
    for _ in range(n_in):
        length, pos = _varint(b, pos + 36)
        pos += length + 4
    n_out, pos = _varint(b, pos)
    found = []
    for n in range(n_out):
        length, script_at = _varint(b, pos + 8)
        end = script_at + length
        script = b[script_at:end]
        if end > len(b):
            raise IndexError
        if script in watched:
            found.append((n, script, int.from_bytes(b[pos:pos + 8], "little")))
        pos = end
    return body, pos, found


@lru_cache(maxsize=64)
def _shape_pattern(length: int, start: bytes) -> re.Pattern[bytes] | None:
    """For scripts of `length` bytes beginning with `start`: a pattern capturing, at every
    place the block holds the script's length byte followed by `start`, the script. The
    match consumes only the length byte and captures in a lookahead, so runs that
    overlap are all found. None for scripts of 253 bytes or more (a longer length)."""
    if length >= 0xFD:
        return None
    return re.compile(re.escape(bytes([length])) + b"(?=(" + re.escape(start)
                      + b"[\\s\\S]{%d}))" % (length - len(start)))


def _watched_in(raw: bytes, watched: KeySet) -> set[bytes] | None:
    """Every watched script the block's outputs can pay (a superset of those they pay;
    empty: the block pays nothing watched), or None when unsure. Every place the block's
    bytes could hold a watched script's output is looked up, whatever it is (an output,
    or a signature that happens to look like one).

    An output paying script S is serialized as its value, then its length, then S, so
    those bytes appear in the block. For each kind of watched script (length and first
    two bytes, `KeySet.shapes`), the C regex engine collects every run of bytes shaped
    like one, and the set is probed for all of them at once."""
    shapes = watched.shapes()
    if shapes is None:
        return None
    found: set[bytes] = set()
    for length, start in shapes:
        pattern = _shape_pattern(length, start)
        if pattern is None:
            return None
        found |= watched.members(pattern.findall(raw))
    return found


def scan_block(raw: bytes, watched: Watched) -> RawBlock:
    """The block's header fields and every output paying a watched script. Raises
    ValueError on data that is not a block, `Unsupported` (a ValueError) on an MWEB
    transaction body inside it.

    With a `KeySet`, a block that cannot pay a watched script is told apart first without
    walking it (`_screen`, a few milliseconds for a mainnet block); a block that may is
    walked (`_walk`)."""
    if len(raw) < HEADER_SIZE + 1:
        raise ValueError("truncated block")
    parent = raw[4:36][::-1].hex()
    time = datetime.fromtimestamp(int.from_bytes(raw[68:72], "little"), UTC)
    count, pos = _varint(raw, HEADER_SIZE)
    probe = _screen(raw, watched)
    if probe is None:  # most blocks pay none of our addresses
        return RawBlock(header_hash(raw), parent, time, (), count)
    try:
        hits, pos = _walk(raw, pos, count, probe)
        if pos > len(raw):
            raise IndexError
    except IndexError:
        raise ValueError("truncated block") from None
    # Anything after the transactions is Litecoin's MWEB block: not read.
    return RawBlock(header_hash(raw), parent, time, tuple(hits), count)


@dataclass(frozen=True)
class _Probe:
    """How a walk asks whether a script is watched: `slots` and `mask` (a `KeySet`'s
    table, probed inline) when set, else `script in watched`."""

    watched: Watched
    slots: "array[int] | None" = None
    mask: int = 0


def _screen(raw: bytes, watched: Watched) -> _Probe | None:
    """How to walk the block, or None when it cannot pay a watched script. With a
    `KeySet`, only the watched scripts found in the block's bytes are looked up (a plain
    set of a handful, the fastest probe); when that search cannot be exact, the set's
    table is probed inline (a block has thousands of outputs, and a function call per
    output costs a good part of the walk)."""
    # The gateway's watchlist hands over its `KeySet` (a `keyset` attribute).
    keyset = watched if isinstance(watched, KeySet) else getattr(watched, "keyset", None)
    if not isinstance(keyset, KeySet):
        return _Probe(watched)
    may_pay = _watched_in(raw, keyset)
    if may_pay is None:
        slots, mask = keyset.table()
        return _Probe(watched, slots, mask)
    return _Probe(may_pay) if may_pay else None


def _walk(b: bytes, pos: int, count: int, probe: _Probe) -> tuple[list[Hit], int]:
    """The `count` transactions from `pos`: their watched outputs, and where they end."""
    hits: list[Hit] = []
    for _ in range(count):
        pos, found = _transaction(b, pos, probe)
        if found:
            hits.extend(found)
    return hits, pos


def _transaction(b: bytes, pos: int, probe: _Probe) -> tuple[int, list[Hit] | None]:
    """One transaction from `pos`: where it ends, and its outputs paying a watched script
    (None for none; its txid is computed only then)."""
    start = pos
    pos += 4  # version
    n_in = b[pos]
    flags = 0
    if n_in == 0:  # segwit marker (and Litecoin's MWEB flag)
        flags = b[pos + 1]
        if flags == 0 or flags & ~(_WITNESS | _MWEB):
            raise ValueError(f"unknown transaction flags {flags:#x}")
        pos += 2
        n_in = b[pos]
    body = pos
    if n_in < 0xFD:
        pos += 1
    else:
        n_in, pos = _varint(b, pos)
    pos = _skip_inputs(b, pos, n_in)
    pos, found = _outputs(b, pos, probe)
    body_end = pos
    if flags & _WITNESS:
        pos = _skip_witnesses(b, pos, n_in)
    if flags & _MWEB:
        if b[pos] != 0:
            raise Unsupported("a transaction in the block carries an MWEB body")
        pos += 1
    pos += 4  # lock time
    if not found:
        return pos, None
    txid = _txid(b[start:start + 4], b[body:body_end], b[pos - 4:pos])
    return pos, [Hit(txid, n, s, v) for n, s, v in found]


def _skip_inputs(b: bytes, pos: int, n_in: int) -> int:
    for _ in range(n_in):
        length = b[pos + 36]  # after the outpoint: the script's length
        if length < 0xFD:
            pos += 41 + length
        else:
            length, pos = _varint(b, pos + 36)
            pos += length + 4
    return pos


def _outputs(b: bytes, pos: int, probe: _Probe
             ) -> tuple[int, list[tuple[int, bytes, int]] | None]:
    """The outputs' end, and the watched ones as (index, script, value), None for none."""
    n_out = b[pos]
    if n_out < 0xFD:
        pos += 1
    else:
        n_out, pos = _varint(b, pos)
    watched, slots, mask = probe.watched, probe.slots, probe.mask
    found: list[tuple[int, bytes, int]] | None = None
    for n in range(n_out):
        length = b[pos + 8]
        if length < 0xFD:
            end = pos + 9 + length
            script = b[pos + 9:end]
        else:
            length, script_at = _varint(b, pos + 8)
            end = script_at + length
            script = b[script_at:end]
        if slots is not None:  # the `KeySet` probe, inlined (see `KeySet.table`)
            h = hash(script) or 1
            i = h & mask
            while True:
                v = slots[i]
                if v == h or v == 0:
                    break
                i = (i + 1) & mask
            watched_here = v == h
        else:
            watched_here = script in watched
        if watched_here:
            if found is None:
                found = []
            found.append((n, script, int.from_bytes(b[pos:pos + 8], "little")))
        pos = end
    return pos, found


def _skip_witnesses(b: bytes, pos: int, n_in: int) -> int:
    for _ in range(n_in):
        items = b[pos]
        if items < 0xFD:
            pos += 1
        else:
            items, pos = _varint(b, pos)
        for _ in range(items):
            length = b[pos]
            if length < 0xFD:
                pos += 1 + length
            else:
                length, pos = _varint(b, pos)
                pos += length
    return pos


def scan_transaction(raw: bytes, txid: str, watched: Watched) -> list[Hit]:
    """Outputs of one serialized transaction (`getrawtransaction <txid> false`, a ZMQ
    `rawtx`) that pay a watched script; `txid` is the caller's (an MWEB-only transaction
    has no canonical outputs, so never any hit)."""
    try:
        _, _, found = _canonical_outputs(raw, watched)
    except IndexError:
        raise ValueError("truncated transaction") from None
    return [Hit(txid, n, s, v) for n, s, v in found]


def transaction_id(raw: bytes) -> str:
    """The id of one serialized transaction with a canonical part: the double SHA-256 of
    version, inputs, outputs and lock time (no witness, no MWEB part)."""
    try:
        body, body_end, _ = _canonical_outputs(raw, _NOTHING)
    except IndexError:
        raise ValueError("truncated transaction") from None
    return _txid(raw[:4], raw[body:body_end], raw[-4:])


class _Nothing:
    def __contains__(self, key: object) -> bool:
        return False


_NOTHING = _Nothing()
