"""A customer's Bitcoin-family address: checked for the configured network, normalised,
and turned into the scriptPubKey a payment to it carries. Pure functions, no I/O.

Segwit addresses are bech32 (version 0, BIP 173) or bech32m (version 1 and up, BIP 350);
legacy ones base58check with the network's P2PKH and P2SH version bytes. The messages
of `BadRefundAddress` are meant for the customer."""

import base58
from bech32 import bech32_hrp_expand, bech32_polymod, convertbits

from chains.networks import NETWORKS, UtxoNetwork
from chains.refunds import BadRefundAddress

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32, _BECH32M = 1, 0x2BC830A3
_MAX_LENGTH = 90
_MWEB = ("ltcmweb1", "tmweb1")  # Litecoin's confidential (MWEB) addresses


def _bech32_parts(text: str) -> tuple[str, list[int], int] | None:
    """(hrp, data without checksum, checksum constant) of a bech32/bech32m string, or
    None when it is not one (bad characters, bad checksum, no separator)."""
    if text.lower() != text and text.upper() != text:
        return None  # mixed case is never valid
    text = text.lower()
    at = text.rfind("1")
    if at < 1 or at + 7 > len(text) or len(text) > _MAX_LENGTH:
        return None
    if any(c not in _CHARSET for c in text[at + 1:]):
        return None
    hrp, data = text[:at], [_CHARSET.find(c) for c in text[at + 1:]]
    constant = bech32_polymod(bech32_hrp_expand(hrp) + data)
    if constant not in (_BECH32, _BECH32M):
        return None
    return hrp, data[:-6], constant


def _segwit_script(network: UtxoNetwork, text: str) -> tuple[str, bytes] | None:
    """(normalised address, scriptPubKey) of a segwit address of `network`; None when the
    text is no bech32 string at all. Raises BadRefundAddress for one that is wrong."""
    parts = _bech32_parts(text)
    if parts is None:
        return None
    hrp, data, constant = parts
    if hrp != network.hrp:
        raise BadRefundAddress(f"this address is for another network ({_network_of(hrp)}); "
                               f"give a {network.name} address")
    if not data:
        raise BadRefundAddress("this address has no witness program")
    version, program = data[0], convertbits(data[1:], 5, 8, False)
    if program is None or not 2 <= len(program) <= 40 or version > 16:
        raise BadRefundAddress("this segwit address has an invalid witness program")
    if (version == 0) != (constant == _BECH32):
        raise BadRefundAddress("this segwit address uses the wrong checksum for its "
                               "version (bech32 for v0, bech32m for v1 and later)")
    if version == 0 and len(program) not in (20, 32):
        raise BadRefundAddress("this segwit v0 address has a program of the wrong length")
    opcode = 0x50 + version if version else 0
    return text.lower(), bytes([opcode, len(program)]) + bytes(program)


def _network_of(hrp: str) -> str:
    names = [n.name for n in NETWORKS.values() if n.hrp == hrp]
    return " or ".join(names) if names else f"prefix {hrp!r}"


def _base58_script(network: UtxoNetwork, text: str) -> bytes:
    try:
        raw = base58.b58decode_check(text)
    except ValueError:
        raise BadRefundAddress("this is not a valid address (checksum or characters "
                               "wrong): check it for typos") from None
    if len(raw) != 21:
        raise BadRefundAddress("this is not a valid address (wrong length)")
    version, payload = raw[0], raw[1:]
    if version in network.p2pkh:
        return b"\x76\xa9\x14" + payload + b"\x88\xac"
    if version in network.p2sh:
        return b"\xa9\x14" + payload + b"\x87"
    raise BadRefundAddress(f"this address is not a {network.name} address")


def parse_address(network: UtxoNetwork, address: str) -> tuple[str, bytes]:
    """(normalised address, scriptPubKey) of a customer's address on `network`: segwit
    in lower case, base58 as given. Raises BadRefundAddress saying what is wrong."""
    text = address.strip()
    if not text:
        raise BadRefundAddress("no address given")
    if text.lower().startswith(_MWEB):
        raise BadRefundAddress("this is a Litecoin MWEB address, which a PSBT cannot pay: "
                               "give an ordinary address (ltc1...)")
    if len(text) > _MAX_LENGTH or not text.isascii() or not text.isalnum():
        raise BadRefundAddress("this is not a valid address (unexpected characters)")
    segwit = _segwit_script(network, text)
    if segwit is not None:
        return segwit
    if text.lower().startswith(network.hrp + "1"):
        raise BadRefundAddress("this address's checksum is wrong: check it for typos")
    return text, _base58_script(network, text)
