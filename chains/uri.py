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


def eip681_native(address: str, chain_id: int, wei: int) -> str:
    """EIP-681 for the native coin: the value in wei, an exact integer (no exponent)."""
    return f"ethereum:{address}@{chain_id}?value={wei}"


def eip681_token(contract: str, chain_id: int, address: str, base_units: int) -> str:
    """EIP-681 for an ERC-20 `transfer(address, uint256)` call on the token's contract."""
    return f"ethereum:{contract}@{chain_id}/transfer?address={address}&uint256={base_units}"
