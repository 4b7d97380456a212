"""Configuration model and builder of the Monero family. Imports no adapter at module
level: validating a configuration needs none."""

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from chains.base import CoinSettings, Family, Follower

_BASE58 = set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")


class MoneroSettings(CoinSettings):
    kind: Literal["monero"]
    daemon_url: SecretStr  # monerod, e.g. http://127.0.0.1:18081
    wallet_rpc_url: SecretStr  # monero-wallet-rpc, e.g. http://127.0.0.1:18083
    address: str  # the wallet's primary address
    view_key: SecretStr  # private view key; give it as view_key_file
    wallet_name: str = Field("packetra", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    wallet_password: SecretStr  # of the wallet file; give it as wallet_password_file
    restore_height: int = Field(0, ge=0)
    poll_interval_seconds: float = Field(1.0, ge=0.1)
    # Only here to be refused with a clear message (extra keys would say "extra inputs").
    spend_key: SecretStr | None = None

    @field_validator("spend_key")
    @classmethod
    def _no_spend_key(cls, v: SecretStr | None) -> None:
        if v is not None:
            raise ValueError("refused: the gateway holds only the view key (a view-only "
                             "wallet cannot spend); remove spend_key")
        return None

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        # Primary addresses: 95 base58 characters, 4 (mainnet, also regtest), 5 (stagenet)
        # or 9 (testnet). Subaddresses (8...) and integrated addresses are not wallets.
        if len(v) != 95 or v[0] not in "459" or not set(v) <= _BASE58:
            raise ValueError("must be the wallet's primary address (95 characters, 4/5/9...)")
        return v

    @field_validator("view_key")
    @classmethod
    def _view_key(cls, v: SecretStr) -> SecretStr:
        key = v.get_secret_value().strip()
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key.lower()):
            raise ValueError("must be 64 hex digits (the private view key)")
        return SecretStr(key)


def build(coins: Mapping[str, Any]) -> list[Follower]:
    from chains.monero.adapter import MoneroChain
    from chains.monero.rpc import MoneroRpc

    followers: list[Follower] = []
    for code, cfg in sorted(coins.items()):
        assert isinstance(cfg, MoneroSettings)
        followers.append(MoneroChain(
            code, MoneroRpc(cfg.daemon_url.get_secret_value()),
            MoneroRpc(cfg.wallet_rpc_url.get_secret_value()),
            address=cfg.address, view_key=cfg.view_key.get_secret_value(),
            wallet_name=cfg.wallet_name, password=cfg.wallet_password.get_secret_value(),
            restore_height=cfg.restore_height, poll_interval=cfg.poll_interval_seconds))
    return followers


FAMILY = Family(
    kind="monero",
    settings=MoneroSettings,
    build=build,
    default_confirmations={"XMR": 10},
    fallback_confirmations=10,
    description="Monero: monerod + a view-only wallet in monero-wallet-rpc",
)
