"""Partially Signed Bitcoin Transactions (BIP 174, version 0), built: an unsigned
transaction, each input's `witness_utxo` and the BIP 32 derivation of the key that signs
it, the derivation of a change output's key. Pure functions, no I/O; the node checks
the result (`decodepsbt`, `analyzepsbt`, `walletprocesspsbt` in the tests).

A PSBT is the magic `psbt\\xff`, then key-value maps (each entry: compact-size key
length, key whose first byte is its type, compact-size value length, value; a 0x00 byte
ends a map): one global map holding the unsigned transaction, one map per input, one per
output, in the transaction's order."""

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

MAGIC = b"psbt\xff"
GLOBAL_UNSIGNED_TX = 0x00
IN_WITNESS_UTXO = 0x01
IN_BIP32_DERIVATION = 0x06
OUT_BIP32_DERIVATION = 0x02
# nSequence below 0xfffffffe: nLockTime applies, and BIP 125 replace-by-fee is signalled
# (the operator's wallet may bump a refund stuck at too low a fee).
SEQUENCE_RBF = 0xFFFFFFFD


@dataclass(frozen=True)
class KeyPath:
    """A public key and where it comes from: master fingerprint and full path."""

    pubkey: bytes  # compressed, 33 bytes
    fingerprint: bytes  # 4 bytes
    path: tuple[int, ...]

    def value(self) -> bytes:
        return self.fingerprint + b"".join(p.to_bytes(4, "little") for p in self.path)


@dataclass(frozen=True)
class Input:
    txid: str  # as displayed (big-endian hex)
    vout: int
    amount: int  # base units
    script: bytes  # the spent output's scriptPubKey
    key: KeyPath | None = None
    sequence: int = SEQUENCE_RBF


@dataclass(frozen=True)
class Output:
    amount: int
    script: bytes
    key: KeyPath | None = None  # ours (change): the wallet recognises it as its own


def compact_size(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def _entry(key: bytes, value: bytes) -> bytes:
    return compact_size(len(key)) + key + compact_size(len(value)) + value


def _txout(amount: int, script: bytes) -> bytes:
    return amount.to_bytes(8, "little") + compact_size(len(script)) + script


def unsigned_transaction(inputs: Sequence[Input], outputs: Sequence[Output],
                         locktime: int = 0, version: int = 2) -> bytes:
    """The transaction in its legacy serialization with empty scriptSigs (as BIP 174
    requires for the global map: no witness, nothing signed)."""
    raw = version.to_bytes(4, "little") + compact_size(len(inputs))
    for i in inputs:
        raw += bytes.fromhex(i.txid)[::-1] + i.vout.to_bytes(4, "little") + b"\x00"
        raw += i.sequence.to_bytes(4, "little")
    raw += compact_size(len(outputs)) + b"".join(_txout(o.amount, o.script) for o in outputs)
    return raw + locktime.to_bytes(4, "little")


def transaction_id(unsigned: bytes) -> str:
    """The id the transaction will have (segwit inputs: signing does not change it)."""
    return hashlib.sha256(hashlib.sha256(unsigned).digest()).digest()[::-1].hex()


def serialize(inputs: Sequence[Input], outputs: Sequence[Output], locktime: int = 0) -> bytes:
    if not inputs or not outputs:
        raise ValueError("a PSBT needs at least one input and one output")
    if any(o.amount < 0 or o.amount >= 2**63 for o in outputs):
        raise ValueError("output amount out of range")
    parts = [MAGIC, _entry(bytes([GLOBAL_UNSIGNED_TX]),
                           unsigned_transaction(inputs, outputs, locktime)), b"\x00"]
    for i in inputs:
        parts.append(_entry(bytes([IN_WITNESS_UTXO]), _txout(i.amount, i.script)))
        if i.key is not None:
            parts.append(_entry(bytes([IN_BIP32_DERIVATION]) + i.key.pubkey, i.key.value()))
        parts.append(b"\x00")
    for o in outputs:
        if o.key is not None:
            parts.append(_entry(bytes([OUT_BIP32_DERIVATION]) + o.key.pubkey, o.key.value()))
        parts.append(b"\x00")
    return b"".join(parts)


def to_base64(inputs: Sequence[Input], outputs: Sequence[Output], locktime: int = 0) -> str:
    return base64.b64encode(serialize(inputs, outputs, locktime)).decode()
