"""Configuration model and builder of the EVM family. Imports no adapter at module level.

Two forms (docs/configuration.md, "EVM networks"):

- `[networks.<NAME>]`, one table per network: its node, chain id, key, finality, block
  time, display name, and its tokens in `[networks.<NAME>.tokens.<ASSET>]`. It stands
  for the coins `<NATIVE>-<NAME>` and `<ASSET>-<NAME>` (ETH-BASE, USDC-BASE), each
  priced as its asset (USDC).
- The single-network form of before, kept as it was: a native coin's `[coins.<CODE>]`
  table names the node (`rpc_url`, `chain_id`, `xpub`); a token's table names the native
  coin whose node it shares (`node = "ETH"`), its contract and its decimals. Its coin
  codes are bare (ETH, USDC); its network's name comes from the chain id (or
  `network_name`).

Either way every coin is one `EvmSettings`, so rates, confirmations and invoices treat a
token like any other coin; both forms can be configured side by side."""

import hashlib
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
    # What the contract's symbol() must answer (checked like decimals); None: not checked.
    symbol: str | None = Field(None, min_length=1, max_length=32)
    # The network (a native coin's; a token rides its node's): its `[networks.*]` name
    # (None in the single-network form), the name customers read ("Base"; default from
    # the chain id), its typical block interval, and when a payment is final.
    network: str | None = None
    network_name: str | None = Field(None, min_length=1, max_length=60)
    block_seconds: float | None = Field(None, gt=0, le=3600)
    # "depth": `confirmations` blocks; "safe"/"finalized": the node's block tag of that
    # name has reached the payment's block (docs/configuration.md, "Finality").
    finality: Literal["depth", "safe", "finalized"] = "depth"

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
            if self.finality != "depth" and self.network is None:
                raise ValueError("finality by block tag is for a [networks.*] table; this "
                                 "form counts confirmations")
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
            if (self.network_name, self.block_seconds, self.finality) != (None, None, "depth"):
                raise ValueError("network_name, block_seconds and finality are its node's: "
                                 "set them on the native coin")
        return self

    @property
    def is_token(self) -> bool:
        return self.node is not None


# What a network's table may say of itself, and of each token; everything else is an
# error naming the key (the coin tables' own model checks the values).
_NETWORK_KEYS = frozenset({
    "kind", "name", "chain_id", "rpc_url", "xpub", "native", "confirmations", "finality",
    "block_seconds", "poll_interval_seconds", "watch_pool", "trace_internal", "tokens"})
_TOKEN_KEYS = frozenset({"contract", "decimals", "symbol", "asset"})


def network_coins(name: str, raw: Mapping[str, Any]
                  ) -> dict[str, tuple[str, dict[str, Any]]]:
    """`[networks.NAME]` -> its native coin's table and one table per token (see the
    module's docstring). A token settles like its network: its confirmations and finality
    are the network's."""
    for key in raw:
        if key not in _NETWORK_KEYS:
            raise ValueError(f"{key}: is not a known key")
    for key in ("name", "chain_id", "rpc_url", "xpub"):
        if key not in raw:
            raise ValueError(f"{key}: is required (each network is followed on its own "
                             "node, with its chain id, key and the name customers read)")
    native = str(raw.get("native", "ETH"))
    if not native.isalnum() or not native.isupper():
        raise ValueError(f"native: {native!r} must be an asset code such as ETH")
    tokens = raw.get("tokens", {})
    if not isinstance(tokens, dict):
        raise ValueError("tokens: must be a table of token tables")
    if raw.get("finality", "depth") != "depth":
        if "confirmations" in raw:
            raise ValueError("confirmations: counts blocks for finality = \"depth\"; with "
                             f"finality = {raw['finality']!r} a payment is final once that "
                             "block tag reaches its block (remove one of the two)")
        # Blocks are connected once final (chains.evm.adapter): one is enough.
        raw = {**raw, "confirmations": 1}
    depth = {k: raw[k] for k in ("confirmations",) if k in raw}
    table = {k: v for k, v in raw.items() if k not in ("name", "native", "tokens")}
    coins = {f"{native}-{name}": (f"networks.{name}", {
        **table, "network": name, "network_name": raw["name"], "asset": native})}
    coins.update(_token_tables(name, f"{native}-{name}", tokens, depth))
    return coins


def _token_tables(name: str, node: str, tokens: Mapping[str, Any], depth: Mapping[str, Any]
                  ) -> dict[str, tuple[str, dict[str, Any]]]:
    coins = {}
    for asset, token in tokens.items():
        where = f"networks.{name}.tokens.{asset}"
        if not isinstance(token, dict):
            raise ValueError(f"tokens.{asset}: must be a table")
        for key in token:
            if key not in _TOKEN_KEYS:
                raise ValueError(f"tokens.{asset}.{key}: is not a known key")
        coins[f"{asset}-{name}"] = (where, {
            "kind": "evm", "node": node, "network": name, "asset": asset, **depth, **token})
    return coins


def check(coins: Mapping[str, Any]) -> list[str]:
    """Every token rides a configured native coin (its network's node), and no token
    contract is two coins on one chain (a payment to it would be counted for both)."""
    natives = {c: s for c, s in coins.items() if not s.is_token}
    problems = []
    seen: dict[tuple[int, str], str] = {}
    for code, cfg in sorted(coins.items()):
        if not cfg.is_token:
            continue
        node = natives.get(cfg.node)
        if node is None:
            problems.append(f"coins.{code}.node: {cfg.node!r} is not an evm native coin: "
                            f"{code}'s network has no node")
            continue
        key = (node.chain_id, cfg.contract.lower())
        if key in seen:
            problems.append(f"coins.{code}.contract: {cfg.contract} on chain id "
                            f"{node.chain_id} is already the coin {seen[key]}: one token "
                            "contract on one chain is one coin")
        else:
            seen[key] = code
    return problems


def _address_spaces(natives: Mapping[str, EvmSettings]) -> dict[str, str]:
    """An EVM address is the same on every chain: networks configured with one xpub share
    one address space, so an index is never handed out on two networks (a payment on the
    wrong one could otherwise be counted for another invoice). The single-network form's
    space keeps its name (the native coin's code) and networks on its key join it; a
    space of networks only is named after the key, so adding or removing a network never
    renames it."""
    by_key: dict[str, list[str]] = {}
    for code, cfg in sorted(natives.items()):
        assert cfg.xpub is not None
        by_key.setdefault(cfg.xpub, []).append(code)
    spaces = {}
    for xpub, codes in by_key.items():
        legacy = [c for c in codes if natives[c].network is None]
        shared = legacy[0] if legacy else (
            "evm-" + hashlib.sha256(xpub.encode()).hexdigest()[:16])
        # A single-network coin keeps the space it always had (its own code), even beside
        # another such coin on the same key: its invoices' indexes were drawn from it.
        spaces.update({c: c if c in legacy else shared for c in codes})
    return spaces


def build(coins: Mapping[str, Any]) -> list[Follower]:
    from chains.evm.adapter import EvmChain, Token
    from chains.evm.networks import network_facts

    problems = check(coins)
    if problems:
        raise ValueError(problems[0])
    natives = {c: s for c, s in coins.items() if isinstance(s, EvmSettings) and not s.is_token}
    tokens: dict[str, list[Token]] = {c: [] for c in natives}
    for code, cfg in sorted(coins.items()):
        if cfg.is_token:
            setting = (f"networks.{cfg.network}.tokens.{cfg.asset}" if cfg.network
                       else f"coins.{code}")
            tokens[cfg.node].append(Token(code, cfg.contract, cfg.decimals, cfg.symbol,
                                          setting))
    spaces = _address_spaces(natives)
    followers: list[Follower] = []
    for code, cfg in sorted(natives.items()):
        assert cfg.rpc_url is not None and cfg.chain_id is not None and cfg.xpub is not None
        followers.append(EvmChain(code, cfg.rpc_url.get_secret_value(), chain_id=cfg.chain_id,
                                  xpub=cfg.xpub, tokens=tokens[code],
                                  poll_interval=cfg.poll_interval_seconds,
                                  watch_pool=cfg.watch_pool,
                                  trace_internal=cfg.trace_internal,
                                  address_space=spaces[code],
                                  network=network_facts(cfg.chain_id, cfg.network_name,
                                                        cfg.block_seconds, cfg.finality)))
    return followers


FAMILY = Family(
    kind="evm",
    settings=EvmSettings,
    build=build,
    default_confirmations={"ETH": 12},
    fallback_confirmations=12,
    description="Ethereum JSON-RPC node (geth, Nethermind, Erigon, Reth): ETH and ERC-20",
    network_coins=network_coins,
    check=check,
)
