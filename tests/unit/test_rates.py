from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gateway.services.errors import ServiceUnavailable
from gateway.services.rates import MedianRates


class Source:
    def __init__(self, name: str, value: str | None) -> None:
        self.name = name
        self.value = value
        self.calls = 0

    async def fetch(self, coin: str, currency: str) -> Decimal:
        self.calls += 1
        if self.value is None:
            raise TimeoutError
        return Decimal(self.value)


async def test_median_of_answering_sources_and_cache_window() -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    a, b, c = Source("a", "80"), Source("b", "82"), Source("c", "100")
    rates = MedianRates([a, b, c], lambda: now[0], timedelta(seconds=60))
    assert await rates.rate("LTC", "EUR") == (Decimal("82"), "median:a,b,c")
    c.value = None
    now[0] += timedelta(seconds=59)
    assert (await rates.rate("LTC", "EUR"))[0] == Decimal("82")  # cached
    assert a.calls == 1
    now[0] += timedelta(seconds=1)
    assert await rates.rate("LTC", "EUR") == (Decimal("81"), "median:a,b")  # refreshed


async def test_no_answer_means_no_price() -> None:
    rates = MedianRates([Source("a", None), Source("b", "-1")], lambda: datetime.now(UTC))
    with pytest.raises(ServiceUnavailable, match="rates unavailable"):
        await rates.rate("LTC", "EUR")


def test_cache_longer_than_a_minute_is_refused() -> None:
    with pytest.raises(ValueError):
        MedianRates([], lambda: datetime.now(UTC), timedelta(seconds=61))


def test_a_quorum_above_the_sources_is_a_configuration_error() -> None:
    from gateway.config import ConfigError, load
    from tests.support.keys import security_env

    env = {"GATEWAY_DATABASE__URL": "sqlite+aiosqlite:///unused.db", **security_env(),
           "GATEWAY_RATES__SOURCES": '["kraken"]'}
    with pytest.raises(ConfigError, match="quorum is 2 but only 1 source"):
        load(None, env)
    assert load(None, env | {"GATEWAY_RATES__QUORUM": "1"}).rates.quorum == 1
