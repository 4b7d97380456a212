"""BIP 32 private derivation, for tests only: a wallet's master key made at runtime from
random bytes, whose account-level xpub a test gateway is configured with while the
node's wallet holds the private keys (to sign the PSBTs the gateway prepares). The
gateway itself never derives or holds a private key."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import base58
from coincurve import PrivateKey

from chains.hd import fingerprint

HARDENED = 0x80000000
TPRV, TPUB = bytes.fromhex("04358394"), bytes.fromhex("043587cf")  # testnet, regtest


@dataclass(frozen=True)
class PrivateNode:
    secret: bytes
    chain_code: bytes
    depth: int = 0
    parent: bytes = b"\0\0\0\0"
    number: int = 0

    @classmethod
    def master(cls, seed: bytes | None = None) -> "PrivateNode":
        raw = hmac.new(b"Bitcoin seed", seed or secrets.token_bytes(32), hashlib.sha512).digest()
        return cls(raw[:32], raw[32:])

    @property
    def public(self) -> bytes:
        return PrivateKey(self.secret).public_key.format(compressed=True)

    @property
    def fingerprint(self) -> bytes:
        return fingerprint(self.public)

    def child(self, number: int) -> "PrivateNode":
        data = (b"\0" + self.secret if number & HARDENED else self.public)
        raw = hmac.new(self.chain_code, data + number.to_bytes(4, "big"),
                       hashlib.sha512).digest()
        secret = PrivateKey(self.secret).add(raw[:32]).secret
        return PrivateNode(secret, raw[32:], self.depth + 1, self.fingerprint, number)

    def path(self, *numbers: int) -> "PrivateNode":
        node = self
        for n in numbers:
            node = node.child(n)
        return node

    def _serialize(self, version: bytes, key: bytes) -> str:
        payload = (version + bytes([self.depth]) + self.parent
                   + self.number.to_bytes(4, "big") + self.chain_code + key)
        return base58.b58encode_check(payload).decode()

    def xprv(self) -> str:
        return self._serialize(TPRV, b"\0" + self.secret)

    def xpub(self) -> str:
        return self._serialize(TPUB, self.public)
