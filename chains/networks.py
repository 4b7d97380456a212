"""Bitcoin-family networks: bech32 prefix and payment URI scheme."""

from dataclasses import dataclass


@dataclass(frozen=True)
class UtxoNetwork:
    name: str
    hrp: str
    uri_scheme: str


NETWORKS: dict[str, UtxoNetwork] = {
    n.name: n
    for n in (
        UtxoNetwork("bitcoin", "bc", "bitcoin"),
        UtxoNetwork("bitcoin-testnet", "tb", "bitcoin"),
        UtxoNetwork("bitcoin-signet", "tb", "bitcoin"),
        UtxoNetwork("bitcoin-regtest", "bcrt", "bitcoin"),
        UtxoNetwork("litecoin", "ltc", "litecoin"),
        UtxoNetwork("litecoin-testnet", "tltc", "litecoin"),
        UtxoNetwork("litecoin-regtest", "rltc", "litecoin"),
    )
}

__all__ = ["NETWORKS", "UtxoNetwork"]
