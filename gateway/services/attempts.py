"""Failure counters for the secrets a customer proves, with the login throttle's doubling
delays and hourly cap (gateway.domain.throttle):

- the password: keyed by the email's blind index, the very counter logins use, so a
  stolen session cannot guess the password through deletion, password or email change;
- the second factor: one counter per account, shared by login, password reset, two-factor
  removal, deletion and email change, so a code cannot be guessed through any of them.

A failure is committed at once, before the error is raised: callers check credentials
before they change anything, so nothing else is pending in the transaction."""

from collections.abc import Callable

from gateway.domain.accounts import email_lookup_form
from gateway.domain.errors import InvalidInput
from gateway.domain.throttle import ThrottlePolicy, ThrottleState, after_failure, retry_after
from gateway.services.errors import TooManyRequests
from gateway.services.ports import Clock, Login, PasswordHasher, UnitOfWork


def second_factor_key(account_id: str) -> str:
    # The adapter's erasure removes this row too (SqlAccounts.erase_personal_data).
    return f"2fa:{account_id}"


class Attempts:
    def __init__(self, policy: ThrottlePolicy, clock: Clock) -> None:
        self._policy = policy
        self._clock = clock

    async def open(self, uow: UnitOfWork, key: str, what: str) -> ThrottleState | None:
        """The counter, locked for the transaction; `TooManyRequests` while it is locked."""
        state = await uow.throttle.get(key)
        wait = retry_after(state, self._clock())
        if wait is not None:
            raise TooManyRequests(f"too many failed {what}; wait and retry",
                                  wait.total_seconds())
        return state

    async def failed(self, uow: UnitOfWork, key: str, state: ThrottleState | None) -> None:
        await uow.throttle.put(key, after_failure(state, self._clock(), self._policy))
        await uow.commit()

    async def passed(self, uow: UnitOfWork, key: str, state: ThrottleState | None) -> None:
        if state is not None:
            await uow.throttle.clear(key)


class PasswordCheck:
    """The password of a logged-in customer, counted like a login."""

    def __init__(self, passwords: PasswordHasher, blind_index: Callable[[str], str],
                 attempts: Attempts) -> None:
        self._passwords = passwords
        self._index = blind_index
        self._attempts = attempts

    async def verify(self, uow: UnitOfWork, account_id: str, password: str | None,
                     field: str = "current_password") -> Login:
        profile = await uow.accounts.profile(account_id)
        key = self._index(email_lookup_form(profile.email))
        if not password:
            raise InvalidInput(field, "is required")
        state = await self._attempts.open(uow, key, "password attempts")
        login = await uow.accounts.find_login(key)
        if login is None or not await self._passwords.verify(login.password_hash, password):
            await self._attempts.failed(uow, key, state)
            raise InvalidInput(field, "is wrong")
        await self._attempts.passed(uow, key, state)
        return login
