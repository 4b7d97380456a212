"""The words a gateway accepts, from its configuration: coins, currencies, plans,
datacenters and event types. The OpenAPI document lists them as enums, so the document a
running gateway serves (and `gateway openapi --config`) says exactly what it accepts."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.domain.events import EVENT_TYPES
from gateway.domain.money import FIAT_EXPONENTS

if TYPE_CHECKING:
    from gateway.config import Settings


@dataclass(frozen=True)
class Vocabulary:
    coins: tuple[str, ...] = ()
    price_currencies: tuple[str, ...] = ()  # an invoice's price (a rate must exist)
    account_currencies: tuple[str, ...] = ()  # a customer's currency
    datacenters: tuple[str, ...] = ()
    plans: tuple[str, ...] = ()
    event_types: tuple[str, ...] = EVENT_TYPES


def vocabulary(settings: "Settings") -> Vocabulary:
    coins = tuple(sorted(settings.coins))
    if settings.rates.sources:
        # A rate source quotes any currency we price in.
        prices = set(FIAT_EXPONENTS)
    else:
        prices = {pair.partition("-")[2] for pair in settings.rates.fixed
                  if pair.partition("-")[0] in settings.coins}
    return Vocabulary(
        coins=coins,
        price_currencies=tuple(sorted(prices)),
        account_currencies=tuple(settings.accounts.currencies),
        datacenters=tuple(settings.accounts.datacenters),
        plans=tuple(sorted(settings.plans)),
    )
