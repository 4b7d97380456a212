"""BIP32 public derivation from an extended public key (watch-only, no private key).

coincurve (libsecp256k1) does the point arithmetic: about 20x faster than pure Python."""

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

import base58
from coincurve import PublicKey

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
