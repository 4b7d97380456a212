"""A customer's Monero address: Monero's own base58 (blocks of 8 bytes as 11 characters),
a network prefix (a varint), the public spend and view keys (and, in an integrated
address, an 8-byte payment id), and the first 4 bytes of Keccak-256 as its checksum.
Pure functions, no I/O."""

from dataclasses import dataclass

from Crypto.Hash import keccak

from chains.refunds import BadRefundAddress

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_BLOCK_CHARS = [0, 2, 3, 5, 6, 7, 9, 10, 11]  # characters of a block of n bytes


@dataclass(frozen=True)
class Kind:
    network: str  # mainnet (regtest too), stagenet, testnet
    what: str  # standard, integrated, subaddress


PREFIXES = {
    18: Kind("mainnet", "standard"), 19: Kind("mainnet", "integrated"),
    42: Kind("mainnet", "subaddress"),
    24: Kind("stagenet", "standard"), 25: Kind("stagenet", "integrated"),
    36: Kind("stagenet", "subaddress"),
    53: Kind("testnet", "standard"), 54: Kind("testnet", "integrated"),
    63: Kind("testnet", "subaddress"),
}
# The network of a wallet's primary address, by its first character.
NETWORK_OF_PRIMARY = {"4": "mainnet", "5": "stagenet", "9": "testnet"}


def _block(chars: str) -> bytes:
    size = _BLOCK_CHARS.index(len(chars))
    number = 0
    for c in chars:
        number = number * 58 + _INDEX[c]
    if number >= 1 << (8 * size):
        raise ValueError("block overflow")
    return number.to_bytes(size, "big")


def b58decode(text: str) -> bytes:
    """Monero's base58: raises ValueError on a character or length it cannot have."""
    if any(c not in _INDEX for c in text):
        raise ValueError("not base58")
    full, rest = divmod(len(text), 11)
    if rest not in _BLOCK_CHARS:
        raise ValueError("impossible length")
    blocks = [text[i * 11:(i + 1) * 11] for i in range(full)] + ([text[-rest:]] if rest else [])
    return b"".join(_block(b) for b in blocks)


def parse_address(address: str, network: str) -> Kind:
    """What the address is, checked: base58, checksum, a known prefix of `network`, the
    length its kind has. Raises BadRefundAddress saying what is wrong."""
    text = address.strip()
    if not text:
        raise BadRefundAddress("no address given")
    try:
        raw = b58decode(text)
    except ValueError:
        raise BadRefundAddress("this is not a Monero address (unexpected characters or "
                               "length)") from None
    if len(raw) < 69 or keccak.new(data=raw[:-4], digest_bits=256).digest()[:4] != raw[-4:]:
        raise BadRefundAddress("this Monero address's checksum is wrong: check it for typos")
    kind = PREFIXES.get(raw[0])
    if kind is None:
        raise BadRefundAddress("this is not a Monero address (unknown prefix)")
    if kind.network != network:
        raise BadRefundAddress(f"this is a {kind.network} address; give a {network} one")
    if len(raw) != (77 if kind.what == "integrated" else 69):
        raise BadRefundAddress("this Monero address has the wrong length")
    return kind
