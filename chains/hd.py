"""BIP32 public derivation from an extended public key (watch-only, no private key).

coincurve (libsecp256k1) does the point arithmetic: about 20x faster than pure Python."""

import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache

import base58
from coincurve import PublicKey
from Crypto.Hash import RIPEMD160

_HARDENED = 0x80000000


class ExtendedKeyError(ValueError):
    pass


@dataclass(frozen=True)
class ExtendedPublicKey:
    depth: int
    chain_code: bytes
    key: bytes  # compressed SEC1, 33 bytes

    @classmethod
    def parse(cls, text: str) -> "ExtendedPublicKey":
        """Accepts any version bytes (xpub, zpub, tpub, vpub, Ltub, Mtub...): the script type
        comes from configuration, not from the prefix."""
        try:
            raw = base58.b58decode_check(text.strip())
        except ValueError:
            raise ExtendedKeyError("not a base58check extended key") from None
        if len(raw) != 78:
            raise ExtendedKeyError("extended key must be 78 bytes")
        key = raw[45:78]
        if key[0] not in (2, 3):
            raise ExtendedKeyError("this is a private extended key; give the public one")
        try:
            PublicKey(key)
        except ValueError:
            raise ExtendedKeyError("extended key holds an invalid point") from None
        return cls(depth=raw[4], chain_code=raw[13:45], key=key)

    def child(self, index: int) -> "ExtendedPublicKey":
        if index < 0 or index >= _HARDENED:
            raise ExtendedKeyError("public derivation cannot make hardened children")
        digest = hmac.new(self.chain_code, self.key + index.to_bytes(4, "big"), hashlib.sha512)
        raw = digest.digest()
        tweak, chain_code = raw[:32], raw[32:]
        child = PublicKey(self.key).add(tweak)
        return ExtendedPublicKey(self.depth + 1, chain_code, child.format(compressed=True))

    def uncompressed(self) -> bytes:
        return PublicKey(self.key).format(compressed=False)


@lru_cache(maxsize=64)
def _branch(xpub: str, branch: int) -> ExtendedPublicKey:
    # The external branch (0) is derived once and reused for every index.
    return ExtendedPublicKey.parse(xpub).child(branch)


def receive_key(xpub: str, index: int) -> ExtendedPublicKey:
    """Key for m/.../0/index below the account-level xpub."""
    return _branch(xpub, 0).child(index)


def change_key(xpub: str, index: int) -> ExtendedPublicKey:
    """Key for m/.../1/index below the account-level xpub (the internal, change branch)."""
    return _branch(xpub, 1).child(index)


def hash160(data: bytes) -> bytes:
    return RIPEMD160.new(hashlib.sha256(data).digest()).digest()


def fingerprint(key: bytes) -> bytes:
    """BIP32 key fingerprint: the first 4 bytes of HASH160 of the compressed public key."""
    return hash160(key)[:4]


_ORIGIN = re.compile(r"^\[([0-9a-fA-F]{8})((?:/[0-9]+['hH]?)*)\]$")


@dataclass(frozen=True)
class KeyOrigin:
    """Where an account-level xpub sits below its wallet's master key, as descriptors
    write it: `[d34db33f/84h/2h/0h]` (master fingerprint, then the account's path). A
    PSBT names each key by this origin plus the branch and index below the xpub, which is
    how the operator's wallet (Core, Sparrow, Electrum, a hardware wallet) finds it."""

    fingerprint: bytes  # 4 bytes
    path: tuple[int, ...]  # hardened elements carry the 0x80000000 bit

    @classmethod
    def parse(cls, text: str) -> "KeyOrigin":
        found = _ORIGIN.match(text.strip())
        if found is None:
            raise ExtendedKeyError("key origin must look like [d34db33f/84h/2h/0h]: 8 hex "
                                   "digits of master fingerprint, then the account's path")
        path = []
        for part in filter(None, found.group(2).split("/")):
            hardened = part[-1] in "'hH"
            number = int(part.rstrip("'hH"))
            if number >= _HARDENED:
                raise ExtendedKeyError(f"key origin: path element {part} is too large")
            path.append(number | (_HARDENED if hardened else 0))
        return cls(bytes.fromhex(found.group(1)), tuple(path))

    @classmethod
    def of_xpub(cls, xpub: str) -> "KeyOrigin":
        """The default: the xpub as its own root (its fingerprint, an empty path), as a
        wallet that imported the account-level key itself (no master) names its keys."""
        return cls(fingerprint(ExtendedPublicKey.parse(xpub).key), ())

    def describe(self) -> str:
        parts = [self.fingerprint.hex()] + [
            f"{p & ~_HARDENED}h" if p & _HARDENED else str(p) for p in self.path]
        return "[" + "/".join(parts) + "]"
