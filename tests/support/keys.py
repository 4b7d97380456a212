"""Fresh watch-only keys for tests: a random valid extended public key per gateway, so no
two test gateways ever derive the same address on the shared regtest node. Nobody holds
the private key; the tests pay from the node's wallet and never spend what they receive."""

import base64
import json
import secrets

import base58
from coincurve import PrivateKey

ZPUB_VERSION = bytes.fromhex("04b24746")


def random_xpub() -> str:
    pub = PrivateKey(secrets.token_bytes(32)).public_key.format(compressed=True)
    payload = (
        ZPUB_VERSION + b"\x03" + secrets.token_bytes(4) + (0x80000000).to_bytes(4, "big")
        + secrets.token_bytes(32) + pub
    )
    return base58.b58encode_check(payload).decode()


def b64key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def security_env() -> dict[str, str]:
    return {
        "GATEWAY_SECURITY__SESSION_KEY": b64key(),
        "GATEWAY_SECURITY__INDEX_KEY": b64key(),
        "GATEWAY_SECURITY__DATA_KEYS": json.dumps([f"t1:{b64key()}"]),
        "GATEWAY_BACKUP__KEY": b64key(),
        # Test gateways have no SMTP server unless a test gives one, and most tests sign
        # up and use the account at once: they opt out of the default explicitly. Tests
        # of verification set it to true (and the default is tested in test_config).
        "GATEWAY_ACCOUNTS__REQUIRE_EMAIL_VERIFICATION": "false",
    }
