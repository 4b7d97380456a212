"""Configuration model and builder of the EVM family. Imports no adapter at module level.

A native coin's table names the node (`rpc_url`, `chain_id`, `xpub`); a token's table
names the native coin whose node and address space it shares (`node = "ETH"`), its
contract and its decimals. Every coin has its own `[coins.<CODE>]` table, so rates,
confirmations and invoices treat a token like any other coin."""

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from chains.base import CoinSettings, Family, Follower
from chains.hd import ExtendedKeyError, ExtendedPublicKey


class EvmSettings(CoinSettings):
    kind: Literal["evm"]
    # The native coin (ETH): its node and its key.
    rpc_url: SecretStr | None = None
    chain_id: int | None = Field(None, ge=1)
    xpub: str | None = None
    poll_interval_seconds: float = Field(1.0, ge=0.05)
    # Read the node's pool (txpool_content) each poll, so ETH invoices are `processing`
    # before their block. On mainnet the pool is megabytes: turn it off to save that.
    watch_pool: bool = True
    # Find ETH sent by contracts' internal calls with `trace_block` (Erigon, Reth,
    # Nethermind, anvil; geth does not offer it). Without it such payments are missed.
    trace_internal: bool = False
    # A token: the native coin whose node it rides, its contract and decimals. No default
    # for decimals: a wrong one prices every invoice 10^n off, so it must be given, and
    # the contract's own decimals() must agree (checked at start-up and by doctor).
    node: str | None = None
    contract: str | None = None
    decimals: int | None = Field(None, ge=0, le=77)

    @field_validator("xpub")
    @classmethod
    def _xpub(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ExtendedPublicKey.parse(v)
            except ExtendedKeyError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("contract")
    @classmethod
    def _contract(cls, v: str | None) -> str | None:
        if v is not None:
            raw = v.removeprefix("0x")
            if len(raw) != 40 or any(c not in "0123456789abcdefABCDEF" for c in raw):
                raise ValueError("must be a 20-byte hex address (0x...)")
        return v

    @model_validator(mode="after")
    def _native_or_token(self) -> "EvmSettings":
        if self.node is None:
            missing = [k for k in ("rpc_url", "chain_id", "xpub") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"a native coin needs {', '.join(missing)} "
                                 "(or a token: node, contract, decimals)")
            if self.contract is not None:
                raise ValueError("contract is for a token: give node too")
            if self.decimals not in (None, 18):
                raise ValueError("decimals is for a token: a native coin has 18")
        else:
            if self.contract is None:
                raise ValueError("a token needs contract")
            if self.decimals is None:
                raise ValueError("a token needs decimals, as its contract's decimals() "
                                 "returns (6 for USDT and USDC): there is no default")
            if self.rpc_url is not None or self.xpub is not None or self.chain_id is not None:
                raise ValueError("a token uses its node's rpc_url, chain_id and xpub")
        return self

    @property
    def is_token(self) -> bool:
        return self.node is not None


def build(coins: Mapping[str, Any]) -> list[Follower]:
    from chains.evm.adapter import EvmChain, Token

    natives = {c: s for c, s in coins.items() if isinstance(s, EvmSettings) and not s.is_token}
    tokens: dict[str, list[Token]] = {c: [] for c in natives}
    for code, cfg in sorted(coins.items()):
        assert isinstance(cfg, EvmSettings)
        if cfg.is_token:
            assert cfg.node is not None and cfg.contract is not None
            assert cfg.decimals is not None
            if cfg.node not in natives:
                raise ValueError(f"coins.{code}.node: {cfg.node!r} is not an evm native coin")
            tokens[cfg.node].append(Token(code, cfg.contract, cfg.decimals))
    followers: list[Follower] = []
    for code, cfg in sorted(natives.items()):
        assert cfg.rpc_url is not None and cfg.chain_id is not None and cfg.xpub is not None
        followers.append(EvmChain(code, cfg.rpc_url.get_secret_value(), chain_id=cfg.chain_id,
                                  xpub=cfg.xpub, tokens=tokens[code],
                                  poll_interval=cfg.poll_interval_seconds,
                                  watch_pool=cfg.watch_pool,
                                  trace_internal=cfg.trace_internal))
    return followers


FAMILY = Family(
    kind="evm",
    settings=EvmSettings,
    build=build,
    default_confirmations={"ETH": 12},
    fallback_confirmations=12,
    description="Ethereum JSON-RPC node (geth, Nethermind, Erigon, Reth): ETH and ERC-20",
)
