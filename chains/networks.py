"""Bitcoin-family networks: bech32 prefix, base58 version bytes, payment URI scheme, the
dust relay fee their nodes apply by default, and what a customer is told of them (name,
typical block interval)."""

from dataclasses import dataclass

from chains.base import NetworkFacts


@dataclass(frozen=True)
class UtxoNetwork:
    name: str
    hrp: str
    uri_scheme: str
    # base58 version bytes of P2PKH and P2SH addresses (Litecoin accepts two for P2SH: the
    # old `3...`/`2...` and its own `M...`/`Q...`).
    p2pkh: tuple[int, ...] = ()
    p2sh: tuple[int, ...] = ()
    # `-dustrelayfee`'s default, base units per 1000 virtual bytes: an output worth less
    # than spending it would cost at this rate is not relayed.
    dust_relay_fee: int = 3000

    @property
    def facts(self) -> NetworkFacts:
        coin, _, variant = self.name.partition("-")
        title = coin.title() + (f" {variant}" if variant else "")
        return NetworkFacts(title, 150 if coin == "litecoin" else 600)


NETWORKS: dict[str, UtxoNetwork] = {
    n.name: n
    for n in (
        UtxoNetwork("bitcoin", "bc", "bitcoin", (0x00,), (0x05,)),
        UtxoNetwork("bitcoin-testnet", "tb", "bitcoin", (0x6F,), (0xC4,)),
        UtxoNetwork("bitcoin-signet", "tb", "bitcoin", (0x6F,), (0xC4,)),
        UtxoNetwork("bitcoin-regtest", "bcrt", "bitcoin", (0x6F,), (0xC4,)),
        # Litecoin Core's default dust relay fee is ten times Bitcoin's.
        UtxoNetwork("litecoin", "ltc", "litecoin", (0x30,), (0x32, 0x05), 30_000),
        UtxoNetwork("litecoin-testnet", "tltc", "litecoin", (0x6F,), (0x3A, 0xC4), 30_000),
        UtxoNetwork("litecoin-regtest", "rltc", "litecoin", (0x6F,), (0x3A, 0xC4), 30_000),
    )
}

__all__ = ["NETWORKS", "UtxoNetwork"]
