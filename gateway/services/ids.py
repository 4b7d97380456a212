import secrets

# Crockford-style base32 alphabet: no padding, no ambiguous characters.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(prefix: str, nbytes: int = 16) -> str:
    """Random public id: `acc_`, `inv_`, `evt_`, `whe_`, `key_`... never sequential."""
    value = int.from_bytes(secrets.token_bytes(nbytes), "big")
    chars = []
    for _ in range((nbytes * 8 + 4) // 5):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return prefix + "".join(chars)
