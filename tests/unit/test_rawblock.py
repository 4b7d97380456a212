"""The serialized-block walker and the compact watched set (pure logic). Real litecoind
blocks (segwit, MWEB) are compared with verbose JSON in tests/integration/test_raw_blocks.py."""

import hashlib
import random
import sys
from pathlib import Path

import pytest

from chains.utxo.rawblock import (
    Hit,
    Unsupported,
    _outputs,
    _Probe,
    _screen,
    _skip_inputs,
    _skip_witnesses,
    _transaction,
    scan_block,
    scan_transaction,
    transaction_id,
)
from chains.watchset import KeySet

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from synthetic_block import build_block, p2wpkh


def varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    return b"\xfe" + n.to_bytes(4, "little")


def dsha(data: bytes) -> str:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()[::-1].hex()


def header(parent: bytes = b"\x11" * 32, time: int = 1_700_000_123) -> bytes:
    return (b"\x00\x00\x00\x20" + parent + b"\x22" * 32 + time.to_bytes(4, "little")
            + b"\xff\xff\x7f\x20" + b"\x00" * 4)


def tx(outputs: list[tuple[int, bytes]], witness: list[bytes] | None = None,
       script_sig: bytes = b"", mweb: bytes | None = None) -> tuple[bytes, str]:
    """A one-input transaction, segwit if `witness` is given; `mweb` adds Litecoin's MWEB
    flag and that optional body. Returns (serialization, txid)."""
    vin = b"\x33" * 32 + b"\x01\x00\x00\x00" + varint(len(script_sig)) + script_sig + b"\xff" * 4
    vout = b"".join(v.to_bytes(8, "little") + varint(len(s)) + s for v, s in outputs)
    body = varint(1) + vin + varint(len(outputs)) + vout
    flags = (1 if witness is not None else 0) | (8 if mweb is not None else 0)
    lock = b"\x07\x00\x00\x00"
    txid = dsha(b"\x02\x00\x00\x00" + body + lock)
    if not flags:
        return b"\x02\x00\x00\x00" + body + lock, txid
    extra = b""
    if witness is not None:
        extra += varint(len(witness)) + b"".join(varint(len(w)) + w for w in witness)
    if mweb is not None:
        extra += mweb
    return b"\x02\x00\x00\x00\x00" + bytes([flags]) + body + extra + lock, txid


def block(*txs: bytes, trailer: bytes = b"") -> bytes:
    return header() + varint(len(txs)) + b"".join(txs) + trailer


WATCHED = b"\x00\x14" + b"\xaa" * 20
OTHER = b"\x00\x14" + b"\xbb" * 20


def test_synthetic_mainnet_block_finds_exactly_the_watched_outputs() -> None:
    rng = random.Random(3)
    keys = [p2wpkh(rng) for _ in range(20_000)]
    synthetic = build_block(keys, pays=25, tx_count=800, output_count=2_000, seed=5)
    watched = KeySet(keys)
    found = scan_block(synthetic.raw, watched)
    assert sorted((h.txid, h.n, h.script, h.value) for h in found.hits) == sorted(
        synthetic.paid)
    assert found.tx_count == 800
    # Any container works (a plain set too), and nothing watched finds nothing.
    assert len(scan_block(synthetic.raw, set(keys)).hits) == 25
    assert scan_block(synthetic.raw, KeySet()).hits == ()


def test_header_fields_and_txid_of_legacy_segwit_and_long_scripts() -> None:
    long_return = b"\x6a\x4d" + (300).to_bytes(2, "little") + b"\x00" * 300  # > 0xfc bytes
    legacy, legacy_id = tx([(5, OTHER), (1_234_567, WATCHED)], script_sig=b"\x51" * 300)
    segwit, segwit_id = tx([(0, long_return), (9, WATCHED)],
                           witness=[b"\x30" * 72, b"\x02" * 33, b"\x01" * 300])
    raw = block(legacy, segwit)
    found = scan_block(raw, KeySet([WATCHED]))
    assert [(h.txid, h.n, h.value) for h in found.hits] == [
        (legacy_id, 1, 1_234_567), (segwit_id, 1, 9)]
    assert found.parent_hash == (b"\x11" * 32)[::-1].hex()
    assert found.time.timestamp() == 1_700_000_123 and found.time.tzinfo is not None
    assert found.hash == dsha(raw[:80])
    assert transaction_id(segwit) == segwit_id and transaction_id(legacy) == legacy_id


def test_mweb_hogex_is_read_and_its_block_extension_ignored() -> None:
    # HogEx: MWEB flag, an empty MWEB body (byte 0); then the MWEB block after vtx.
    hogex, hogex_id = tx([(12, b"\x58\x20" + b"\x44" * 32), (3, WATCHED)], mweb=b"\x00")
    coinbase, _ = tx([(50, OTHER)], witness=[b"\x00" * 32])
    found = scan_block(block(coinbase, hogex, trailer=b"\x01" + b"\x99" * 500),
                       KeySet([WATCHED]))
    assert [(h.txid, h.n, h.value) for h in found.hits] == [(hogex_id, 1, 3)]


def test_real_litecoin_hogex_and_coinbase_txids() -> None:
    # From a litecoind 0.21.2.1 regtest block right after MWEB activation (height 437).
    coinbase = bytes.fromhex(
        "020000000001010000000000000000000000000000000000000000000000000000000000000000ffff"
        "ffff0502b5010101ffffffff02807c814a00000000160014efecf08660205b47a668090f0cdd514138"
        "c415330000000000000000266a24aa21a9ed1b4530b40799d5b2be39ca7fb927736535114b42df0a9b"
        "81a14fb652ad786d9f012000000000000000000000000000000000000000000000000000000000000"
        "0000000000000")
    hogex = bytes.fromhex(
        "0200000000080116f6f7cb48f8b3f9a5d6bdeb56494a5244f8b3207095498b5a7b94897a609c500000"
        "000000ffffffff01e666814a00000000225820a56c9d5efd5864208dfd03b4f12d087de4369df75823"
        "1abdc71de1b081b476ad0000000000")
    assert transaction_id(coinbase) == (
        "5dc53449216d222a9f788ebdbf63f3fb4f6211bab450c31bf0883aa4b810340c")
    assert transaction_id(hogex) == (
        "6346256eeafb67bdd0bff7fca62eda06af8b02a02b212e43073179053d3bbcba")
    pay = bytes.fromhex("0014efecf08660205b47a668090f0cdd514138c41533")
    [hit] = scan_transaction(coinbase, "cb", KeySet([pay]))
    assert (hit.txid, hit.n, hit.value) == ("cb", 0, 1_250_000_000)
    found = scan_block(block(coinbase, hogex), KeySet([pay]))
    assert [h.txid for h in found.hits] == [transaction_id(coinbase)]


def test_mweb_body_inside_a_block_is_left_to_the_json_path() -> None:
    with_body, _ = tx([(1, OTHER)], mweb=b"\x01" + b"\x00" * 64)
    with pytest.raises(Unsupported):  # it may pay us: the block is walked, and refused
        scan_block(block(with_body), KeySet([OTHER]))
    # A mempool transaction is read up to its outputs only: its MWEB body is no obstacle,
    # and an MWEB-only one (no canonical inputs or outputs) pays nothing watched.
    assert scan_transaction(with_body, "t", KeySet([OTHER]))[0].value == 1
    mweb_only = b"\x02\x00\x00\x00\x00\x08\x00\x00\x01" + b"\x5a" * 200
    assert scan_transaction(mweb_only, "t", KeySet([WATCHED])) == []


# A block is walked (and so checked) when it may pay a watched script; with a KeySet, one
# that cannot is answered from its bytes without a walk (the node's data, not checked).
@pytest.mark.parametrize("cut", [1, 40, 81, 120, -5])
def test_truncated_data_is_a_value_error(cut: int) -> None:
    segwit, _ = tx([(9, WATCHED)], witness=[b"\x30" * 72])
    raw = block(segwit)
    with pytest.raises(ValueError):
        scan_block(raw[:cut], {WATCHED})
    if cut < 0:  # the watched output is still there: walked, and found short
        with pytest.raises(ValueError):
            scan_block(raw[:cut], KeySet([WATCHED]))


def test_unknown_transaction_flags_are_refused() -> None:
    segwit, _ = tx([(9, WATCHED)], witness=[b"\x30" * 72])
    bad = segwit[:5] + b"\x02" + segwit[6:]
    for watched in ({OTHER}, KeySet([WATCHED])):
        with pytest.raises(ValueError, match="flags"):
            scan_block(block(bad), watched)


def test_keyset_membership_growth_and_size() -> None:
    rng = random.Random(9)
    keys = [p2wpkh(rng) for _ in range(100_000)]
    watched = KeySet(keys[:10])
    for key in keys[10:]:
        watched.add(key)  # grows by doubling from 1,024 slots
    watched.update(keys[:50])  # again: no duplicates
    assert len(watched) == 100_000
    assert all(k in watched for k in keys)
    strangers = [p2wpkh(rng) for _ in range(100_000)]
    assert not any(k in watched for k in strangers)
    assert "not bytes" not in watched and 5 not in watched
    # At most half full: 2^18 slots of 8 bytes for 100,000 keys, and a filter of 4 bytes
    # per slot.
    assert watched.nbytes() == 8 * 2**18 + 4 * 2**18


def test_a_lookalike_run_swallowing_a_real_output_does_not_hide_it() -> None:
    # The value of the watched output starts with the bytes of a P2WPKH output's prefix
    # (16 00 14): the shaped run starting there covers the real output's own prefix, so a
    # scan that only collected runs would miss it. Counting the prefix catches that.
    sneaky_value = int.from_bytes(b"\x16\x00\x14\x00\x00\x00\x00\x00", "little")
    paying, paying_id = tx([(5, OTHER), (sneaky_value, WATCHED)])
    found = scan_block(block(paying), KeySet([WATCHED]))
    assert [(h.txid, h.n, h.value) for h in found.hits] == [(paying_id, 1, sneaky_value)]


def test_blocks_paying_nothing_watched_and_every_script_kind() -> None:
    rng = random.Random(4)
    keys = [p2wpkh(rng) for _ in range(5_000)]
    unpaid = build_block(keys, pays=0, tx_count=300, output_count=900, seed=8)
    assert scan_block(unpaid.raw, KeySet(keys)).hits == ()
    # Watched scripts of other kinds (P2TR, P2PKH, a bare 2-byte script) are found too,
    # shapes tracked or not.
    taproot = b"\x51\x20" + b"\x07" * 32
    p2pkh = b"\x76\xa9\x14" + b"\x08" * 20 + b"\x88\xac"
    tiny = b"\x51\x51"
    paying, paying_id = tx([(1, taproot), (2, p2pkh), (3, tiny), (4, OTHER)])
    raw = block(paying)
    for watched in (KeySet([taproot, p2pkh]), KeySet([tiny, taproot, p2pkh])):
        assert watched.shapes() is None or len(watched.shapes() or ()) == 2
        hits = scan_block(raw, watched).hits
        assert {h.n for h in hits} == ({0, 1, 2} if tiny in watched else {0, 1})
        assert {h.txid for h in hits} == {paying_id}


def test_keyset_members_agrees_with_membership() -> None:
    rng = random.Random(12)
    keys = [p2wpkh(rng) for _ in range(3_000)]  # about half full: probing goes on
    watched = KeySet(keys)
    strangers = [p2wpkh(rng) for _ in range(3_000)]
    assert watched.members(strangers) == set() and watched.members([]) == set()
    some = keys[::97]
    assert watched.members([*strangers[:500], *some, *strangers[500:], some[0]]) == set(some)
    assert watched.members([keys[5]]) == {keys[5]}


def test_a_watched_script_of_253_bytes_or_more_is_found_by_walking() -> None:
    long_script = b"\x6a\x4d" + (300).to_bytes(2, "little") + b"\x05" * 300
    paying, paying_id = tx([(1, OTHER), (7, long_script)])
    hits = scan_block(block(paying), KeySet([long_script, WATCHED])).hits
    assert [(h.txid, h.n, h.value, h.script) for h in hits] == [
        (paying_id, 1, 7, long_script)]


class _Watchlist:
    """Like the gateway's SqlWatchlist: hands over its KeySet. Asking it one output at a
    time would mean the scanner missed the fast path (a method call per output)."""

    def __init__(self, keys: KeySet) -> None:
        self.keyset = keys

    def __contains__(self, key: object) -> bool:
        raise AssertionError("scanned output by output instead of through the KeySet")


def test_a_watchlist_holding_a_keyset_gets_the_fast_path() -> None:
    rng = random.Random(5)
    keys = [p2wpkh(rng) for _ in range(2_000)]
    unpaid = build_block(keys, pays=0, tx_count=200, output_count=600, seed=3)
    assert scan_block(unpaid.raw, _Watchlist(KeySet(keys))).hits == ()
    paying = build_block(keys, pays=7, tx_count=200, output_count=600, seed=4)
    assert (sorted((h.txid, h.n) for h in scan_block(paying.raw, _Watchlist(KeySet(keys))).hits)
            == sorted((h.txid, h.n) for h in scan_block(paying.raw, KeySet(keys)).hits))
    assert len(scan_block(paying.raw, KeySet(keys)).hits) == 7


# The walk's steps, one by one (scan_block above is their sum).

def test_screen_tells_how_to_walk_a_block() -> None:
    paying = block(tx([(5, WATCHED)])[0])
    unpaid = block(tx([(5, OTHER)])[0])
    assert _screen(unpaid, KeySet([WATCHED])) is None  # nothing to walk
    probe = _screen(paying, KeySet([WATCHED, OTHER]))
    assert probe is not None and probe.watched == {WATCHED} and probe.slots is None
    plain = {WATCHED}
    assert _screen(unpaid, plain) == _Probe(plain)  # no KeySet: walk, ask the set
    # Scripts of 253 bytes or more cannot be searched for: the table is probed inline.
    long_keys = KeySet([b"\x6a" + b"\x01" * 300, WATCHED])
    probe = _screen(unpaid, long_keys)
    assert probe is not None and probe.slots is not None and probe.watched is long_keys


def test_inputs_and_witnesses_are_skipped_by_their_lengths() -> None:
    short = b"\x33" * 36 + b"\x02ab" + b"\xff" * 4
    long = b"\x44" * 36 + b"\xfd\x00\x01" + b"s" * 256 + b"\xff" * 4
    data = b"XX" + short + long + b"rest"
    assert _skip_inputs(data, 2, 2) == len(data) - 4
    witness = b"\x02" + b"\x01w" + b"\xfd\x00\x01" + b"v" * 256  # two items, one long
    many = b"\xfd\x01\x00" + b"\x00"  # one input with one (empty) item, counted long-form
    data = b"Y" + witness + many + b"rest"
    assert _skip_witnesses(data, 1, 2) == len(data) - 4


def test_outputs_are_read_through_either_probe() -> None:
    values = [(7, OTHER), (8, WATCHED), (9, b"\x6a" + b"\x01" * 300), (10, WATCHED)]
    serialized = varint(len(values)) + b"".join(
        v.to_bytes(8, "little") + varint(len(s)) + s for v, s in values)
    keys = KeySet([WATCHED])
    slots, mask = keys.table()
    for probe in (_Probe({WATCHED}), _Probe(keys, slots, mask)):
        assert _outputs(serialized + b"end", 0, probe) == (
            len(serialized), [(1, WATCHED, 8), (3, WATCHED, 10)])
    assert _outputs(serialized, 0, _Probe({b"nothing"})) == (len(serialized), None)


def test_a_transaction_is_read_to_its_end_its_txid_only_when_it_pays() -> None:
    for witness in (None, [b"sig", b"key"]):
        raw, txid = tx([(5, OTHER), (6, WATCHED)], witness=witness)
        assert _transaction(raw + b"next", 0, _Probe({WATCHED})) == (
            len(raw), [Hit(txid, 1, WATCHED, 6)])
        assert _transaction(raw, 0, _Probe({b"nothing"})) == (len(raw), None)
