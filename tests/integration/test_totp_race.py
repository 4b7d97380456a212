"""Two logins racing with the same TOTP code: exactly one may pass (issue 11, item 6)."""

import asyncio
import contextlib
import os
from datetime import UTC, datetime
from typing import Any

import pyotp
import pytest

from gateway.adapters.db.accounts import SqlAccounts
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import BlindIndex, FieldCipher
from gateway.adapters.passwords import Argon2Passwords
from gateway.adapters.tokens import SessionTokens
from gateway.adapters.totp import PyotpCodes
from gateway.domain.throttle import ThrottlePolicy
from gateway.services.accounts import AccountPolicy, AccountService, Signup
from gateway.services.attempts import Attempts, PasswordCheck
from gateway.services.errors import Unauthorized
from gateway.services.ports import TotpState
from gateway.services.two_factor import SecondFactor, TwoFactorService


def now() -> datetime:
    return datetime.now(UTC)


async def test_the_same_code_in_two_concurrent_logins_passes_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = make_engine(database_url)
    cipher = FieldCipher([("t", os.urandom(32))])

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, cipher)

    passwords, codes, index = Argon2Passwords(), PyotpCodes(), BlindIndex(os.urandom(32))
    attempts = Attempts(ThrottlePolicy(), now)
    two_factor = TwoFactorService(uow, codes=codes, hasher=passwords,
                                  factor=SecondFactor(codes, passwords, now), clock=now,
                                  passwords=PasswordCheck(uow, passwords, index, attempts),
                                  attempts=attempts)
    accounts = AccountService(uow, passwords=passwords, blind_index=index,
                              tokens=SessionTokens(os.urandom(32), "test"), clock=now,
                              policy=AccountPolicy(("nl-ams",), ("EUR",), "1"),
                              two_factor=two_factor)
    try:
        view = await accounts.sign_up(Signup("race@example.org", "race password 1"))
        secret = (await two_factor.begin(view.account.id, "race password 1")).secret
        await two_factor.confirm(view.account.id, pyotp.TOTP(secret).now())
        code = pyotp.TOTP(secret).at(now(), counter_offset=1)

        # Both logins read the account's two-factor state before either records the step:
        # the interleaving in which an unlocked read-then-write lets both through.
        original = SqlAccounts.totp
        readers: set[Any] = set()
        both_read = asyncio.Event()

        async def totp_after_both_read(self: SqlAccounts, account_id: str) -> TotpState:
            state = await original(self, account_id)
            task = asyncio.current_task()
            if task not in readers:
                readers.add(task)
                if len(readers) == 2:
                    both_read.set()
                with contextlib.suppress(TimeoutError):  # SQLite serializes writers
                    await asyncio.wait_for(both_read.wait(), 2)
            return state

        monkeypatch.setattr(SqlAccounts, "totp", totp_after_both_read)
        results = await asyncio.gather(
            accounts.log_in("race@example.org", "race password 1", code),
            accounts.log_in("race@example.org", "race password 1", code),
            return_exceptions=True)
        monkeypatch.undo()
        passed = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, Unauthorized)]
        assert len(passed) == 1 and len(refused) == 1, results
    finally:
        await engine.dispose()


async def test_one_recovery_code_in_two_concurrent_logins_passes_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same race with a recovery code: both logins list the unused codes before
    either spends it; the spending UPDATE is conditional, so only one session results."""
    engine = make_engine(database_url)
    cipher = FieldCipher([("t", os.urandom(32))])

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, cipher)

    passwords, codes, index = Argon2Passwords(), PyotpCodes(), BlindIndex(os.urandom(32))
    attempts = Attempts(ThrottlePolicy(), now)
    two_factor = TwoFactorService(uow, codes=codes, hasher=passwords,
                                  factor=SecondFactor(codes, passwords, now), clock=now,
                                  passwords=PasswordCheck(uow, passwords, index, attempts),
                                  attempts=attempts)
    accounts = AccountService(uow, passwords=passwords, blind_index=index,
                              tokens=SessionTokens(os.urandom(32), "test"), clock=now,
                              policy=AccountPolicy(("nl-ams",), ("EUR",), "1"),
                              two_factor=two_factor)
    try:
        view = await accounts.sign_up(Signup("spent@example.org", "spent password 1"))
        secret = (await two_factor.begin(view.account.id, "spent password 1")).secret
        recovery = await two_factor.confirm(view.account.id, pyotp.TOTP(secret).now())

        original = SqlAccounts.unused_recovery_codes
        readers: set[Any] = set()
        both_read = asyncio.Event()

        async def codes_after_both_read(self: SqlAccounts, account_id: str
                                        ) -> list[tuple[int, str]]:
            found = await original(self, account_id)
            task = asyncio.current_task()
            if task not in readers:
                readers.add(task)
                if len(readers) == 2:
                    both_read.set()
                with contextlib.suppress(TimeoutError):  # SQLite serializes writers
                    await asyncio.wait_for(both_read.wait(), 2)
            return found

        monkeypatch.setattr(SqlAccounts, "unused_recovery_codes", codes_after_both_read)
        results = await asyncio.gather(
            accounts.log_in("spent@example.org", "spent password 1", recovery[0]),
            accounts.log_in("spent@example.org", "spent password 1", recovery[0]),
            return_exceptions=True)
        monkeypatch.undo()
        passed = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, Unauthorized)]
        assert len(passed) == 1 and len(refused) == 1, results
    finally:
        await engine.dispose()
