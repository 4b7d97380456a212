from decimal import Decimal

from gateway.domain.money import parse_rate
from gateway.services.errors import ServiceUnavailable


class FixedRates:
    """Rates from configuration, for development and tests (`[rates] fixed`)."""

    def __init__(self, fixed: dict[str, str]) -> None:
        self._rates = {pair.upper(): parse_rate(value) for pair, value in fixed.items()}

    async def rate(self, coin: str, currency: str) -> tuple[Decimal, str]:
        value = self._rates.get(f"{coin}-{currency}".upper())
        if value is None:
            raise ServiceUnavailable(f"rates unavailable: no rate for {coin}-{currency}")
        return value, "fixed"
