from collections.abc import Mapping

from chains.base import Chain, Destination


class ChainDirectory:
    """The configured chains by coin code; implements `services.ports.ChainDirectory`."""

    def __init__(self, chains: Mapping[str, Chain]) -> None:
        self._chains = dict(chains)

    def derive(self, coin: str, index: int) -> Destination:
        return self._chains[coin].derive(index)

    def decimals(self, coin: str) -> int:
        return self._chains[coin].decimals

    def coins(self) -> tuple[str, ...]:
        return tuple(sorted(self._chains))

    def get(self, coin: str) -> Chain:
        return self._chains[coin]

    def items(self) -> list[tuple[str, Chain]]:
        return sorted(self._chains.items())
