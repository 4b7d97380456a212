"""Money as integers: fiat in minor units, coins in base units. Decimal only at the edges."""

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from gateway.domain.errors import InvalidInput

# ISO 4217 minor-unit exponents for the currencies we price in.
FIAT_EXPONENTS: dict[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "SEK": 2, "NOK": 2,
    "DKK": 2, "PLN": 2, "CZK": 2, "JPY": 0, "ISK": 0,
}


# How a price is written: digits, at most one point, no sign, blank, exponent or leading
# zero (the OpenAPI document's pattern, narrowed there to each currency's decimals).
AMOUNT_FORM = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")


@dataclass(frozen=True)
class Fiat:
    minor: int
    currency: str

    @property
    def exponent(self) -> int:
        return FIAT_EXPONENTS[self.currency]

    def as_decimal_string(self) -> str:
        """Always with the currency's minor digits: "8.00", as prices are written."""
        if self.exponent == 0:
            return str(self.minor)
        whole, frac = divmod(self.minor, 10**self.exponent)
        return f"{whole}.{frac:0{self.exponent}d}"


def parse_fiat(amount: object, currency: object, field: str = "price") -> Fiat:
    """Parse a decimal string price. Refuses floats, zero, negatives and excess precision."""
    if not isinstance(currency, str) or currency not in FIAT_EXPONENTS:
        raise InvalidInput(f"{field}.currency", f"unsupported currency {currency!r}")
    if not isinstance(amount, str):
        raise InvalidInput(f"{field}.amount", 'must be a decimal string such as "9.99"')
    try:
        value = Decimal(amount.strip())
    except InvalidOperation:
        raise InvalidInput(f"{field}.amount", f"{amount!r} is not a decimal number") from None
    if not value.is_finite():
        raise InvalidInput(f"{field}.amount", "must be a finite number")
    if value <= 0:
        raise InvalidInput(f"{field}.amount", "must be greater than zero")
    exponent = FIAT_EXPONENTS[currency]
    exp = value.as_tuple().exponent
    assert isinstance(exp, int)
    if -exp > exponent:
        raise InvalidInput(
            f"{field}.amount", f"{currency} has {exponent} decimal places; got {amount!r}"
        )
    # Before scaling: "1e999999" is finite, and scaling it overflows the context.
    if value.adjusted() >= 15 or (minor := int(value.scaleb(exponent))) >= 10**15:
        raise InvalidInput(f"{field}.amount", "is too large")
    if not AMOUNT_FORM.fullmatch(amount):
        raise InvalidInput(f"{field}.amount", 'write it as digits and one point, e.g. "9.99" '
                           "(no sign, blank, exponent or leading zero)")
    return Fiat(minor, currency)


def parse_rate(text: str) -> Decimal:
    """A price of one whole coin in fiat, as configured or fetched (positive, finite)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidInput("rate", f"{text!r} is not a decimal number") from None
    if not value.is_finite() or value <= 0:
        raise InvalidInput("rate", "must be a positive number")
    return value


def fiat_to_base_units(price: Fiat, rate: Decimal, decimals: int,
                       round_up: bool = True) -> int:
    """Coin base units due for a fiat price at `rate` (fiat per whole coin), rounded up so
    the merchant is never short by a rounding step; `round_up=False` for what the
    merchant pays out (a refund never pays more than the credit was worth)."""
    whole_fiat = Decimal(price.minor).scaleb(-price.exponent)
    units = (whole_fiat / rate).scaleb(decimals)
    return int(units.to_integral_value(rounding=ROUND_CEILING if round_up else ROUND_FLOOR))


def base_units_to_fiat_minor(amount: int, rate: Decimal, decimals: int, currency: str) -> int:
    exponent = FIAT_EXPONENTS[currency]
    value = Decimal(amount).scaleb(-decimals) * rate
    return int(value.scaleb(exponent).to_integral_value())


def format_units(amount: int, decimals: int) -> str:
    """Integer base units -> exact decimal string, no float, no exponent notation."""
    sign = "-" if amount < 0 else ""
    digits = str(abs(amount)).rjust(decimals + 1, "0")
    if decimals == 0:
        return sign + digits
    whole, frac = digits[:-decimals], digits[-decimals:]
    frac = frac.rstrip("0")
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"
