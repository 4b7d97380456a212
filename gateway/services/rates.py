"""Which price to lock into an invoice: the median of the sources that answered, cached
for a short while. Never a made-up price: no answer means no invoice."""

import asyncio
import logging
import statistics
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from gateway.services.errors import ServiceUnavailable
from gateway.services.ports import Clock, RateProvider

log = logging.getLogger(__name__)


class RateSource(Protocol):
    name: str

    async def fetch(self, coin: str, currency: str) -> Decimal:
        """Fiat per whole coin; raises on any failure."""


class MedianRates:
    """The median of the sources that answered and agree: at least `quorum` of them, each
    within `max_deviation` (a fraction) of the median of every answer. Fewer answers, or
    answers too far apart, lock no price (503 with the reason)."""

    def __init__(
        self, sources: Sequence[RateSource], clock: Clock, ttl: timedelta = timedelta(seconds=60),
        quorum: int = 1, max_deviation: Decimal | None = None,
    ) -> None:
        if ttl > timedelta(seconds=60):
            raise ValueError("rates may be cached for at most 60 s")
        self._quorum = quorum
        self._deviation = max_deviation
        self._sources = list(sources)
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[tuple[str, str], tuple[datetime, Decimal, str]] = {}

    async def rate(self, coin: str, currency: str) -> tuple[Decimal, str]:
        key = (coin, currency)
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1], hit[2]
        pair = f"{coin}-{currency}"
        answered = self._enough(pair, await self._answers(coin, currency))
        agreeing = self._agreeing(pair, answered)
        value = statistics.median(v for _, v in agreeing)
        description = "median:" + ",".join(name for name, _ in agreeing)
        self._cache[key] = (now, value, description)
        return value, description

    async def _answers(self, coin: str, currency: str) -> list[tuple[str, Decimal]]:
        """Every source asked at once; those that gave a usable price, by name."""
        results = await asyncio.gather(
            *(s.fetch(coin, currency) for s in self._sources), return_exceptions=True
        )
        answered: list[tuple[str, Decimal]] = []
        for source, result in zip(self._sources, results, strict=True):
            if isinstance(result, Decimal) and result.is_finite() and result > 0:
                answered.append((source.name, result))
            else:
                log.warning("rate source %s gave no %s-%s price (%s)", source.name, coin,
                            currency, type(result).__name__)
        return answered

    def _enough(self, pair: str, answered: list[tuple[str, Decimal]]
                ) -> list[tuple[str, Decimal]]:
        if not answered:
            raise ServiceUnavailable(f"rates unavailable: no source answered for {pair}")
        if len(answered) < self._quorum:
            raise ServiceUnavailable(
                f"rates unavailable: {len(answered)} of {len(self._sources)} sources answered "
                f"for {pair} ({', '.join(n for n, _ in answered)}), {self._quorum} needed")
        return answered

    def _agreeing(self, pair: str, answered: list[tuple[str, Decimal]]
                  ) -> list[tuple[str, Decimal]]:
        """The answers within the allowed deviation of the median of all of them (all,
        when no deviation is set); fewer than the quorum lock no price."""
        if self._deviation is None:
            return answered
        middle = statistics.median(v for _, v in answered)
        limit = self._deviation
        agreeing = [(n, v) for n, v in answered if abs(v - middle) <= middle * limit]
        percent = f"{float(limit * 100):g}%"
        if len(agreeing) < self._quorum:
            said = ", ".join(f"{n} {v}" for n, v in answered)
            raise ServiceUnavailable(
                f"rates unavailable: the sources disagree on {pair} ({said}): "
                f"{len(agreeing)} within {percent} of their median {middle}, "
                f"{self._quorum} needed")
        for name, v in answered:
            if (name, v) not in agreeing:
                log.warning("rate source %s is left out for %s: %s is more than %s from "
                            "the median %s", name, pair, v, percent, middle)
        return agreeing


class PreferFixed:
    """Fixed rates from configuration win; every other pair goes to `fallback`."""

    def __init__(self, fixed: RateProvider, pairs: set[str], fallback: RateProvider | None
                 ) -> None:
        self._fixed = fixed
        self._pairs = {p.upper() for p in pairs}
        self._fallback = fallback

    async def rate(self, coin: str, currency: str) -> tuple[Decimal, str]:
        if f"{coin}-{currency}".upper() in self._pairs or self._fallback is None:
            return await self._fixed.rate(coin, currency)
        return await self._fallback.rate(coin, currency)


class AssetRates:
    """A coin is priced as its asset: USDC-BASE and USDC-ARB1 are both USDC (the rate
    sources and `[rates] fixed` know assets, not networks)."""

    def __init__(self, inner: RateProvider, assets: dict[str, str]) -> None:
        self._inner = inner
        self._assets = assets

    async def rate(self, coin: str, currency: str) -> tuple[Decimal, str]:
        return await self._inner.rate(self._assets.get(coin, coin), currency)


class CountedRates:
    """Tells the metrics whether a rate could be had: `unavailable()` each time none could
    (the invoice is refused), `succeeded()` each time one was."""

    def __init__(self, inner: RateProvider, unavailable: Callable[[], None],
                 succeeded: Callable[[], None]) -> None:
        self._inner = inner
        self._unavailable = unavailable
        self._succeeded = succeeded

    async def rate(self, coin: str, currency: str) -> tuple[Decimal, str]:
        try:
            found = await self._inner.rate(coin, currency)
        except ServiceUnavailable:
            self._unavailable()
            raise
        self._succeeded()
        return found
