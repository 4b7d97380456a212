"""The words a gateway accepts, from its configuration: coins, currencies, plans,
datacenters and event types. The OpenAPI document lists them as enums, so the document a
running gateway serves (and `gateway openapi --config`) says exactly what it accepts.
`Vocabulary()` is the generic one (`gateway openapi` without a configuration): what a
configuration decides is left open (None), price currencies are every known one."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.domain.events import EVENT_TYPES
from gateway.domain.money import FIAT_EXPONENTS

if TYPE_CHECKING:
    from gateway.config import Settings


@dataclass(frozen=True)
class Vocabulary:
    # None: open (any string); () : none is accepted.
    coins: tuple[str, ...] | None = None
    # an invoice's price (a rate must exist)
    price_currencies: tuple[str, ...] = tuple(sorted(FIAT_EXPONENTS))
    account_currencies: tuple[str, ...] | None = None  # a customer's currency
    datacenters: tuple[str, ...] | None = None
    plans: tuple[str, ...] | None = None
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
