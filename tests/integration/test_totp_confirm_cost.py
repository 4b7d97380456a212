"""Turning two-factor on hashes its ten recovery codes (argon2, ~19 MiB and tens of
milliseconds each), but only for a code that turns it on: a wrong code, or a confirmation
without an enrolment, costs no hash at all (found while profiling the schemathesis run,
where every generated code cost ten hashes)."""

import os
from datetime import UTC, datetime

import pyotp
import pytest

from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import BlindIndex, FieldCipher
from gateway.adapters.passwords import Argon2Passwords
from gateway.adapters.tokens import SessionTokens
from gateway.adapters.totp import PyotpCodes
from gateway.domain.errors import InvalidInput
from gateway.domain.throttle import ThrottlePolicy
from gateway.services.accounts import AccountPolicy, AccountService, Signup
from gateway.services.attempts import Attempts, PasswordCheck
from gateway.services.errors import Conflict
from gateway.services.two_factor import SecondFactor, TwoFactorService


def now() -> datetime:
    return datetime.now(UTC)


class CountingHasher:
    """The real hasher, counting the hashes it makes."""

    def __init__(self) -> None:
        self.real = Argon2Passwords()
        self.hashes = 0

    async def hash(self, password: str) -> str:
        self.hashes += 1
        return await self.real.hash(password)

    async def verify(self, stored: str | None, password: str) -> bool:
        return await self.real.verify(stored, password)

    def needs_rehash(self, stored: str) -> bool:
        return self.real.needs_rehash(stored)


async def test_only_a_code_that_turns_two_factor_on_is_paid_for_with_hashes(
        database_url: str) -> None:
    engine = make_engine(database_url)
    cipher = FieldCipher([("t", os.urandom(32))])

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, cipher)

    hasher, codes, index = CountingHasher(), PyotpCodes(), BlindIndex(os.urandom(32))
    attempts = Attempts(ThrottlePolicy(), now)
    two_factor = TwoFactorService(uow, codes=codes, hasher=hasher,
                                  factor=SecondFactor(codes, hasher, now), clock=now,
                                  passwords=PasswordCheck(uow, hasher, index, attempts),
                                  attempts=attempts)
    accounts = AccountService(uow, passwords=hasher, blind_index=index,
                              tokens=SessionTokens(os.urandom(32), "t"), clock=now,
                              policy=AccountPolicy(("nl-ams",), ("EUR",), "1"),
                              two_factor=two_factor)
    try:
        account = (await accounts.sign_up(Signup("cost@example.org", "cost password 1"))
                   ).account.id
        before = hasher.hashes
        with pytest.raises(InvalidInput, match="POST /v1/me/totp first"):
            await two_factor.confirm(account, "123456")
        secret = (await two_factor.begin(account, "cost password 1")).secret
        totp = pyotp.TOTP(secret)
        wrong = next(c for c in ("000000", "111111") if not totp.verify(c, valid_window=1))
        with pytest.raises(InvalidInput, match="not the current code"):
            await two_factor.confirm(account, wrong)
        assert hasher.hashes == before, "a refused confirmation hashed recovery codes"

        recovery = await two_factor.confirm(account, totp.now())
        assert len(recovery) == 10 and hasher.hashes == before + 10
        assert await two_factor.is_on(account)
        with pytest.raises(Conflict):
            await two_factor.confirm(account, totp.now())
        assert hasher.hashes == before + 10
    finally:
        await engine.dispose()
