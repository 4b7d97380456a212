"""Crafting Monero addresses for tests: Monero's base58 encoder (the follower only
decodes) and an address re-made with another network prefix and a valid checksum."""

from Crypto.Hash import keccak

from chains.monero.addresses import b58decode

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BLOCK_CHARS = [0, 2, 3, 5, 6, 7, 9, 10, 11]
STAGENET, TESTNET = 24, 53  # standard addresses' prefixes


def b58encode(raw: bytes) -> str:
    out = ""
    for at in range(0, len(raw), 8):
        block = raw[at:at + 8]
        number, chars = int.from_bytes(block, "big"), ""
        for _ in range(_BLOCK_CHARS[len(block)]):
            number, digit = divmod(number, 58)
            chars = _ALPHABET[digit] + chars
        out += chars
    return out


def with_prefix(address: str, prefix: int) -> str:
    raw = bytes([prefix]) + b58decode(address)[1:-4]
    return b58encode(raw + keccak.new(data=raw, digest_bits=256).digest()[:4])
