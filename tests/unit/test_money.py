from decimal import Decimal

import pytest

from gateway.domain.errors import InvalidInput
from gateway.domain.money import fiat_to_base_units, format_units, parse_fiat


def test_parse_fiat_minor_units() -> None:
    assert parse_fiat("9.99", "EUR").minor == 999
    assert parse_fiat("10", "EUR").minor == 1000
    assert parse_fiat("1500", "JPY").minor == 1500


@pytest.mark.parametrize(
    ("amount", "currency", "fragment"),
    [
        ("0", "EUR", "greater than zero"),
        ("-1.00", "EUR", "greater than zero"),
        ("abc", "EUR", "not a decimal"),
        ("9.999", "EUR", "2 decimal places"),
        ("1.5", "JPY", "0 decimal places"),
        (9.99, "EUR", "decimal string"),
        ("NaN", "EUR", "finite"),
        ("1.00", "XXX", "unsupported currency"),
        # The form the OpenAPI document's pattern allows, no other.
        (" 9.99", "EUR", "digits and one point"), ("1e2", "EUR", "digits and one point"),
        ("09.99", "EUR", "digits and one point"), ("9.", "EUR", "digits and one point"),
        ("+5", "EUR", "digits and one point"), ("10000000000000", "EUR", "too large"),
        # Finite, but its scaling overflowed Decimal's context (a 500 on every form).
        ("1e999999", "EUR", "too large"), ("9e999999999", "JPY", "too large"),
    ],
)
def test_parse_fiat_rejects(amount: object, currency: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        parse_fiat(amount, currency)


def test_conversion_rounds_up_to_the_merchants_favour() -> None:
    # 9.99 EUR at 80 EUR/LTC = 0.124875 LTC exactly
    assert fiat_to_base_units(parse_fiat("9.99", "EUR"), Decimal("80"), 8) == 12_487_500
    # 10 EUR at 3 EUR/coin = 3.333... -> rounded up in the last unit
    assert fiat_to_base_units(parse_fiat("10", "EUR"), Decimal("3"), 8) == 333_333_334
    # Paid out (a refund): never more than the fiat was worth.
    assert fiat_to_base_units(parse_fiat("10", "EUR"), Decimal("3"), 8,
                              round_up=False) == 333_333_333
    # wei-sized amounts stay exact
    assert fiat_to_base_units(parse_fiat("1", "USD"), Decimal("1"), 18) == 10**18


def test_format_units_is_exact() -> None:
    assert format_units(12_487_500, 8) == "0.124875"
    assert format_units(100_000_000, 8) == "1"
    assert format_units(2**256 - 1, 18) == str(2**256 - 1)[:-18] + "." + str(2**256 - 1)[-18:]
    assert format_units(1, 12) == "0.000000000001"


def test_fiat_keeps_its_minor_digits() -> None:
    assert parse_fiat("8", "EUR").as_decimal_string() == "8.00"
    assert parse_fiat("0.5", "EUR").as_decimal_string() == "0.50"
    assert parse_fiat("1500", "JPY").as_decimal_string() == "1500"
