"""Configuration model and builder of the UTXO family. Imports no adapter at module
level: validating a configuration needs none."""

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from chains.base import CoinSettings, Family, Follower
from chains.hd import ExtendedKeyError, ExtendedPublicKey, KeyOrigin
from chains.networks import NETWORKS


class UtxoSettings(CoinSettings):
    kind: Literal["utxo"]
    network: str
    rpc_url: SecretStr
    xpub: str
    poll_interval_seconds: float = Field(1.0, ge=0.1)
    # Optional ZMQ endpoints of the node (`-zmqpubhashblock`, `-zmqpubrawtx`): a new block
    # or a transaction paying a watched script wakes the watcher at once; polling stays.
    zmq_block: str | None = None
    zmq_tx: str | None = None
    # Read blocks from the node's REST interface (`-rest`, same host and port as RPC,
    # no credentials) in binary, rather than hex over JSON-RPC.
    rest: bool = False
    # Refunds (docs/refunds-on-chain.md). The fee rate, in base units per virtual byte
    # (sat/vB), of a refund's PSBT when the node's `estimatesmartfee` has no estimate
    # (regtest always, a node just started); unset: such a refund cannot be prepared.
    fallback_fee_rate: int | None = Field(None, ge=1, le=10_000)
    # Where the xpub sits below the operator's master key, as descriptors write it:
    # "[d34db33f/84h/2h/0h]". The PSBT names each key by it so that the wallet holding
    # the master key (Core, Sparrow, Electrum, a hardware wallet) finds it. Unset: the
    # xpub's own fingerprint and paths relative to it (a wallet that imported the
    # account-level key itself).
    key_origin: str | None = None

    @field_validator("key_origin")
    @classmethod
    def _key_origin(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                KeyOrigin.parse(v)
            except ExtendedKeyError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("zmq_block", "zmq_tx")
    @classmethod
    def _zmq(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("tcp://", "ipc://")):
            raise ValueError("must be a ZMQ endpoint such as tcp://127.0.0.1:28332")
        return v

    @field_validator("network")
    @classmethod
    def _network(cls, v: str) -> str:
        if v not in NETWORKS:
            raise ValueError(f"must be one of {', '.join(NETWORKS)}")
        return v

    @field_validator("xpub")
    @classmethod
    def _xpub(cls, v: str) -> str:
        try:
            ExtendedPublicKey.parse(v)
        except ExtendedKeyError as exc:
            raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _origin_depth(self) -> "UtxoSettings":
        if self.key_origin is not None:
            depth = ExtendedPublicKey.parse(self.xpub).depth
            levels = len(KeyOrigin.parse(self.key_origin).path)
            if levels != depth:
                raise ValueError(f"key_origin names a path of {levels} levels but the xpub "
                                 f"is at depth {depth} (an account xpub: 3, as 84h/2h/0h)")
        return self


def build(coins: Mapping[str, Any]) -> list[Follower]:
    from chains.jsonrpc import JsonRpcClient
    from chains.utxo.adapter import UtxoChain

    followers: list[Follower] = []
    for code, cfg in sorted(coins.items()):
        assert isinstance(cfg, UtxoSettings)
        # One coin per node and one xpub per coin: the coin code names both the cursor
        # and the address space (so today's counters carry on unchanged).
        followers.append(UtxoChain(code, NETWORKS[cfg.network], xpub=cfg.xpub,
                                   rpc=JsonRpcClient(cfg.rpc_url.get_secret_value()),
                                   poll_interval=cfg.poll_interval_seconds,
                                   zmq_block=cfg.zmq_block, zmq_tx=cfg.zmq_tx,
                                   rest=cfg.rest, fallback_fee_rate=cfg.fallback_fee_rate,
                                   key_origin=(KeyOrigin.parse(cfg.key_origin)
                                               if cfg.key_origin else None)))
    return followers


FAMILY = Family(
    kind="utxo",
    settings=UtxoSettings,
    build=build,
    default_confirmations={"BTC": 2, "LTC": 6},
    description="Bitcoin Core / Litecoin Core",
)
