"""Public price APIs of well-known exchanges and aggregators, each a `RateSource`.

Only public, unauthenticated ticker endpoints; nothing about customers is ever sent."""

import json
from decimal import Decimal
from typing import Any

import aiohttp

KRAKEN_ASSETS = {"BTC": "XBT"}
COINGECKO_IDS = {"BTC": "bitcoin", "LTC": "litecoin", "ETH": "ethereum", "XMR": "monero",
                 "USDC": "usd-coin", "USDT": "tether"}
DEFAULT_URLS = {
    "kraken": "https://api.kraken.com",
    "bitstamp": "https://www.bitstamp.net",
    "coinbase": "https://api.coinbase.com",
    "coingecko": "https://api.coingecko.com",
}


class LazySession:
    """One client session for all sources, opened on first use inside the event loop."""

    def __init__(self, timeout: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"User-Agent": "gateway"}
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpRateSource:
    def __init__(self, name: str, base_url: str, session: LazySession) -> None:
        self.name = name
        self._base = base_url.rstrip("/")
        self._session = session

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        async with self._session.get().get(self._base + path, params=params,
                                           allow_redirects=False) as resp:
            resp.raise_for_status()
            # Prices are parsed as Decimal straight from the JSON text: no float on the way.
            return json.loads(await resp.text(), parse_float=Decimal)

    async def fetch(self, coin: str, currency: str) -> Decimal:
        raise NotImplementedError


class Kraken(HttpRateSource):
    async def fetch(self, coin: str, currency: str) -> Decimal:
        pair = KRAKEN_ASSETS.get(coin, coin) + currency
        doc = await self._get("/0/public/Ticker", {"pair": pair})
        if doc.get("error"):
            raise ValueError(str(doc["error"]))
        [ticker] = doc["result"].values()
        return Decimal(ticker["c"][0])  # last trade closed: [price, lot volume]


class Bitstamp(HttpRateSource):
    async def fetch(self, coin: str, currency: str) -> Decimal:
        doc = await self._get(f"/api/v2/ticker/{coin.lower()}{currency.lower()}/")
        return Decimal(doc["last"])


class Coinbase(HttpRateSource):
    async def fetch(self, coin: str, currency: str) -> Decimal:
        doc = await self._get(f"/v2/prices/{coin}-{currency}/spot")
        return Decimal(doc["data"]["amount"])


class CoinGecko(HttpRateSource):
    async def fetch(self, coin: str, currency: str) -> Decimal:
        coin_id = COINGECKO_IDS[coin]
        doc = await self._get("/api/v3/simple/price",
                              {"ids": coin_id, "vs_currencies": currency.lower()})
        return Decimal(doc[coin_id][currency.lower()])


SOURCES: dict[str, type[HttpRateSource]] = {
    "kraken": Kraken, "bitstamp": Bitstamp, "coinbase": Coinbase, "coingecko": CoinGecko,
}
