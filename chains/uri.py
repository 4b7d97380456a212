"""Payment URI helpers shared by families."""


def decimal_units(base_units: int, decimals: int) -> str:
    """Integer base units -> exact decimal string, no float, no exponent notation."""
    sign = "-" if base_units < 0 else ""
    digits = str(abs(base_units)).rjust(decimals + 1, "0")
    if decimals == 0:
        return sign + digits
    whole, frac = digits[:-decimals], digits[-decimals:].rstrip("0")
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def bip21(scheme: str, address: str, base_units: int, decimals: int) -> str:
    """BIP21: `bitcoin:<address>?amount=<decimal coins>`."""
    return f"{scheme}:{address}?amount={decimal_units(base_units, decimals)}"
