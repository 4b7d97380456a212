"""The pure parts of refunds (chains.refunds' families): customer addresses checked per
network (bech32/bech32m, base58, EIP-55, Monero's base58 and prefixes), the PSBT's
unsigned transaction and key-value maps, the fee and dust arithmetic and the choice of
outputs to spend. The real nodes check the same things end to end (tests/integration/
test_*_refund.py); these pin the rules themselves."""

import base64
import secrets

import bech32
import pytest
from Crypto.Hash import keccak

from chains.evm.adapter import checked_address
from chains.hd import ExtendedKeyError, ExtendedPublicKey, KeyOrigin, fingerprint
from chains.monero.addresses import parse_address as monero_address
from chains.networks import NETWORKS
from chains.refunds import BadRefundAddress, CannotPrepare, Spendable
from chains.utxo.addresses import parse_address
from chains.utxo.psbt import Input, KeyPath, Output, serialize, transaction_id, unsigned_transaction
from chains.utxo.rawblock import transaction_id as node_transaction_id
from chains.utxo.refund import Ask, dust_threshold, fee_for, plan_refund
from tests.support.keys import random_xpub
from tests.support.monero_address import b58encode

BTC = NETWORKS["bitcoin"]
P2WPKH = b"\x00\x14" + bytes(20)


def encode(hrp: str, version: int, program: bytes) -> str:
    """bech32 (the library's: the version-0 checksum, whatever the version)."""
    found = bech32.encode(hrp, version, program)
    assert found is not None
    return found


def bech32m(hrp: str, version: int, program: bytes, constant: int = 0x2BC830A3) -> str:
    """Any version and program with the given checksum constant (bech32m's, or 1 for
    bech32), unchecked: what a careless encoder may produce."""
    five = bech32.convertbits(program, 8, 5)
    assert five is not None
    data = [version, *five]
    values = bech32.bech32_hrp_expand(hrp) + data
    polymod = bech32.bech32_polymod(values + [0] * 6) ^ constant
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(bech32.CHARSET[d] for d in data + checksum)


def test_segwit_addresses() -> None:
    v0 = encode("bc", 0, bytes(range(20)))
    assert parse_address(BTC, v0.upper()) == (v0, b"\x00\x14" + bytes(range(20)))
    wsh = encode("bc", 0, bytes(32))
    assert parse_address(BTC, wsh)[1] == b"\x00\x20" + bytes(32)
    taproot = "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"  # BIP 350
    assert parse_address(BTC, taproot)[1][:2] == b"\x51\x20"
    assert parse_address(BTC, bech32m("bc", 1, bytes(32)))[1] == b"\x51\x20" + bytes(32)
    for bad, reason in [(bech32m("bc", 0, bytes(20)), "wrong checksum for its version"),
                        (bech32m("bc", 1, bytes(32), 1), "wrong checksum for its version"),
                        (bech32m("bc", 0, bytes(25), 1), "wrong length"),
                        (encode("tb", 0, bytes(20)), "another network"),
                        ("ltcmweb1" + "q" * 120, "MWEB"),
                        (v0[:-1] + ("q" if v0[-1] != "q" else "p"), "checksum"),
                        (v0[:8] + v0[8:].upper(), "checksum"), ("", "no address"),
                        ("bc1q" + "q" * 90, "unexpected")]:
        with pytest.raises(BadRefundAddress, match=reason):
            parse_address(BTC, bad)


def test_base58_addresses() -> None:
    # Bitcoin's well-known addresses (the genesis coinbase's, and BIP 13's example).
    assert parse_address(BTC, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")[1][:3] == b"\x76\xa9\x14"
    assert parse_address(BTC, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy")[1][:2] == b"\xa9\x14"
    with pytest.raises(BadRefundAddress, match="not a litecoin address"):
        parse_address(NETWORKS["litecoin"], "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
    with pytest.raises(BadRefundAddress, match="checksum"):
        parse_address(BTC, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb")


def test_eip55() -> None:
    for good in ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
                 "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
                 "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
                 "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb"):
        assert checked_address(good) == good
        assert checked_address(good.lower()) == good
        assert checked_address("0X" + good[2:].upper()) == good
        at = max(i for i, c in enumerate(good) if i > 1 and c.isalpha())
        with pytest.raises(BadRefundAddress, match="checksum"):
            checked_address(good[:at] + good[at].swapcase() + good[at + 1:])


def monero(prefix: int, payment_id: bytes = b"") -> str:
    raw = bytes([prefix]) + secrets.token_bytes(64) + payment_id
    return b58encode(raw + keccak.new(data=raw, digest_bits=256).digest()[:4])


def test_monero_addresses() -> None:
    assert monero_address(monero(18), "mainnet").what == "standard"
    assert monero_address(monero(42), "mainnet").what == "subaddress"
    assert monero_address(monero(19, bytes(8)), "mainnet").what == "integrated"
    assert monero_address(monero(36), "stagenet").what == "subaddress"
    assert monero_address(monero(54, bytes(8)), "testnet").what == "integrated"
    assert len(monero(18)) == 95 and len(monero(19, bytes(8))) == 106
    with pytest.raises(BadRefundAddress, match="stagenet address"):
        monero_address(monero(24), "mainnet")
    with pytest.raises(BadRefundAddress, match="wrong length"):
        monero_address(monero(18, bytes(8)), "mainnet")  # a payment id on a standard one
    with pytest.raises(BadRefundAddress, match="unknown prefix"):
        monero_address(monero(77), "mainnet")


def test_key_origin() -> None:
    origin = KeyOrigin.parse("[D34DB33F/84h/2'/0H]")
    assert (origin.fingerprint, origin.path) == (
        bytes.fromhex("d34db33f"), (84 | 1 << 31, 2 | 1 << 31, 1 << 31))
    assert origin.describe() == "[d34db33f/84h/2h/0h]"
    assert KeyOrigin.parse("[00000000]").path == ()
    for bad in ("d34db33f/84h", "[d34db33/84h]", "[d34db33f/84x]", "[d34db33f/4294967296]"):
        with pytest.raises(ExtendedKeyError):
            KeyOrigin.parse(bad)
    xpub = random_xpub()
    assert KeyOrigin.of_xpub(xpub) == KeyOrigin(
        fingerprint(ExtendedPublicKey.parse(xpub).key), ())


def test_fee_and_dust() -> None:
    assert fee_for(438, 1000) == 110  # 437.5 vB, rounded up, at 1 per vB
    assert fee_for(438, 1500) == 165
    assert fee_for(1, 1) == 1  # never rounded down to nothing
    # Bitcoin Core's own thresholds at its default -dustrelayfee (3000 per kvB).
    assert dust_threshold(P2WPKH, 3000) == 294
    assert dust_threshold(b"\x76\xa9\x14" + bytes(20) + b"\x88\xac", 3000) == 546


def spendable(amount: int, n: int) -> Spendable:
    return Spendable(f"{n:064x}", 0, amount, P2WPKH, n)


def ask(amount: int, rate: int = 10_000) -> Ask:
    return Ask(amount, P2WPKH, P2WPKH, rate, 3000)


def test_the_smallest_single_output_that_covers_it_is_spent() -> None:
    outputs = [spendable(a, n) for n, a in enumerate([50_000, 300_000, 120_000, 90_000])]
    plan = plan_refund(ask(100_000), outputs)
    assert [s.amount for s in plan.spends] == [120_000]
    assert plan.fee == fee_for(42 + 272 + 124 * 2, 10_000)
    assert plan.change == 120_000 - 100_000 - plan.fee


def test_else_the_largest_until_covered_and_dust_change_goes_to_the_fee() -> None:
    outputs = [spendable(a, n) for n, a in enumerate([50_000, 90_000, 60_000, 60_000])]
    plan = plan_refund(ask(140_000), outputs + outputs[:1])  # a duplicate counts once
    assert [s.amount for s in plan.spends] == [90_000, 60_000]
    without_change = fee_for(42 + 2 * 272 + 124, 10_000)
    exact = plan_refund(ask(150_000 - without_change - 100), outputs[1:3])
    assert (exact.change, exact.fee) == (0, without_change + 100)
    with pytest.raises(CannotPrepare, match="do not cover"):
        plan_refund(ask(300_000), outputs)
    with pytest.raises(CannotPrepare, match="dust"):
        plan_refund(ask(293), outputs)


def test_psbt_maps() -> None:
    key = KeyPath(b"\x02" + bytes(32), bytes.fromhex("d34db33f"), (84 | 1 << 31, 0, 5))
    inputs = [Input("11" * 32, 1, 70_000, P2WPKH, key), Input("22" * 32, 0, 5_000, P2WPKH)]
    outputs = [Output(60_000, P2WPKH), Output(10_000, P2WPKH, key)]
    raw = serialize(inputs, outputs)
    unsigned = unsigned_transaction(inputs, outputs)
    assert node_transaction_id(unsigned) == transaction_id(unsigned)
    assert unsigned[:5] == b"\x02\x00\x00\x00\x02"  # version 2, two inputs
    assert unsigned[5:37] == bytes.fromhex("11" * 32)[::-1]
    assert raw.startswith(b"psbt\xff\x01\x00" + bytes([len(unsigned)]) + unsigned + b"\x00")
    rest = raw[5 + 3 + len(unsigned) + 1:]
    witness_utxo = (70_000).to_bytes(8, "little") + b"\x16" + P2WPKH
    derivation = (b"\x22\x06" + key.pubkey + b"\x10" + key.fingerprint
                  + (84 | 1 << 31).to_bytes(4, "little") + (0).to_bytes(4, "little")
                  + (5).to_bytes(4, "little"))
    assert rest.startswith(b"\x01\x01" + bytes([len(witness_utxo)]) + witness_utxo
                           + derivation + b"\x00")
    assert rest.endswith(b"\x00" + b"\x22\x02" + derivation[2:] + b"\x00")
    assert base64.b64decode(base64.b64encode(raw)) == raw
    with pytest.raises(ValueError):
        serialize([], outputs)
