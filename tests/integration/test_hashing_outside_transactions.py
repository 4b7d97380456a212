"""A password check never holds SQLite's write lock while it hashes (found by review: six
2FA set-ups at once stalled every write for seconds). The hasher here waits until the
test lets it go; meanwhile another writer must get the lock at once."""

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import BlindIndex, FieldCipher
from gateway.adapters.passwords import Argon2Passwords
from gateway.adapters.tokens import SessionTokens
from gateway.adapters.totp import PyotpCodes
from gateway.domain.throttle import ThrottlePolicy
from gateway.services.accounts import AccountPolicy, AccountService, Signup
from gateway.services.attempts import Attempts, PasswordCheck
from gateway.services.two_factor import SecondFactor, TwoFactorService
from tests.support.databases import fresh_database


def now() -> datetime:
    return datetime.now(UTC)


class GatedHasher:
    """The real hasher, held at `verify` until the test opens the gate."""

    def __init__(self) -> None:
        self.real = Argon2Passwords()
        self.waiting = asyncio.Event()
        self.gate = asyncio.Event()

    async def hash(self, password: str) -> str:
        return await self.real.hash(password)

    async def verify(self, stored: str | None, password: str) -> bool:
        self.waiting.set()
        await self.gate.wait()
        return await self.real.verify(stored, password)

    def needs_rehash(self, stored: str) -> bool:
        return self.real.needs_rehash(stored)


async def test_a_password_being_checked_holds_no_write_lock(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        engine = make_engine(url)
        cipher = FieldCipher([("t", os.urandom(32))])

        def uow() -> SqlUnitOfWork:
            return SqlUnitOfWork(engine, cipher)

        hasher, codes, index = GatedHasher(), PyotpCodes(), BlindIndex(os.urandom(32))
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
            view = await accounts.sign_up(Signup("gated@example.org", "gated password 1"))
            begin = asyncio.create_task(two_factor.begin(view.account.id, "gated password 1"))
            await asyncio.wait_for(hasher.waiting.wait(), 10)
            # The hash is pending. Another writer gets SQLite's lock at once (a 0.2 s busy
            # timeout: "database is locked" if the check held a write transaction).
            other = make_engine(url)
            try:
                async with other.begin() as conn:
                    await conn.execute(text("PRAGMA busy_timeout = 200"))
                    await conn.execute(text("UPDATE accounts SET currency = 'EUR'"))
            finally:
                await other.dispose()
            hasher.gate.set()
            enrolment = await asyncio.wait_for(begin, 10)
            assert enrolment.secret
        finally:
            await engine.dispose()
