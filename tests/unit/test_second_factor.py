"""Recovery codes are argon2 hashes: only an input of their shape is tried against them."""

from datetime import UTC, datetime
from typing import Any

import pyotp

from gateway.adapters.totp import PyotpCodes
from gateway.services.ports import TotpState
from gateway.services.two_factor import CheckedCode, SecondFactor

SECRET = pyotp.random_base32(32)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Accounts:
    async def totp(self, account_id: str) -> TotpState:
        return TotpState(SECRET, True, None)

    async def unused_recovery_codes(self, account_id: str) -> list[tuple[int, str]]:
        return [(1, "hash-1"), (2, "hash-2")]


class Uow:
    accounts = Accounts()


class CountingHasher:
    def __init__(self) -> None:
        self.verified = 0

    async def hash(self, password: str) -> str:
        return password

    async def verify(self, stored: str | None, password: str) -> bool:
        self.verified += 1
        return False

    def needs_rehash(self, stored: str) -> bool:
        return False


async def test_only_inputs_shaped_like_recovery_codes_cost_a_hash() -> None:
    codes = PyotpCodes()
    hasher = CountingHasher()
    factor = SecondFactor(codes, hasher, lambda: NOW)
    uow: Any = Uow()
    wrong = next(c for c in ("000000", "111111") if codes.matching_step(SECRET, c, NOW) is None)
    unused = await Accounts().unused_recovery_codes("acc_1")
    for guess in (wrong, "12345", "not a code at all", "x" * 500):
        assert await factor.match_recovery(unused, guess) is None
        assert not await factor.accept(uow, "acc_1", CheckedCode(guess))
    assert hasher.verified == 0
    assert await factor.match_recovery(unused, codes.recovery_codes(1)[0].upper()) is None
    assert hasher.verified == 2


def test_a_code_of_other_digits_is_no_code() -> None:
    # "²²²²²²" passes str.isdigit; hmac.compare_digest refuses non-ASCII text (a 500).
    codes = PyotpCodes()
    secret = codes.new_secret()
    assert codes.matching_step(secret, "\u00b2" * 6, datetime.now(UTC)) is None
