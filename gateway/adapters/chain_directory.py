from collections.abc import Iterable, Sequence

from chains.base import Described, Destination, Follower, NetworkFacts


class ChainDirectory:
    """The configured followers, and each coin's follower; implements
    `services.ports.ChainDirectory`."""

    def __init__(self, followers: Iterable[Follower]) -> None:
        self._followers = list(followers)
        self._by_coin: dict[str, Follower] = {}
        for follower in self._followers:
            for coin in follower.coins:
                if coin in self._by_coin:
                    raise ValueError(f"coin {coin} is served by two followers")
                self._by_coin[coin] = follower

    def coins(self) -> tuple[str, ...]:
        return tuple(sorted(self._by_coin))

    def follower(self, coin: str) -> Follower:
        return self._by_coin[coin]

    def followers(self) -> list[Follower]:
        return sorted(self._followers, key=lambda f: f.feed)

    def decimals(self, coin: str) -> int:
        return self._by_coin[coin].decimals(coin)

    def address_space(self, coin: str) -> str:
        return self._by_coin[coin].address_space

    def feed(self, coin: str) -> str:
        return self._by_coin[coin].feed

    async def allocate(self, coin: str, indexes: Sequence[int]) -> list[Destination]:
        return await self._by_coin[coin].allocate(indexes)

    def payment_uri(self, coin: str, destination: Destination, base_units: int) -> str:
        return self._by_coin[coin].payment_uri(destination, coin, base_units)

    def network_facts(self, coin: str) -> NetworkFacts | None:
        follower = self._by_coin[coin]
        return follower.network_facts(coin) if isinstance(follower, Described) else None

    async def aclose(self) -> None:
        for follower in self._followers:
            await follower.aclose()
