"""Failure counters for the secrets a customer proves, with the login throttle's doubling
delays and hourly cap (gateway.domain.throttle):

- the password at login: two counters, one per (email, client network) with the doubling
  delays, and one per email with a higher hourly cap only (gateway.services.accounts), so
  failures from one network cannot lock the customer out from another;
- the password of a logged-in customer: one counter per account, which login obeys
  too, so a stolen session cannot guess the password through deletion, password or
  email change (and nobody without a session can move it);
- the second factor: one counter per account, shared by login, password reset, two-factor
  removal, deletion and email change, so a code cannot be guessed through any of them.

A failure is committed at once, before the error is raised: callers check credentials
before they change anything, so nothing else is pending in the transaction.

A password is checked before the caller's transaction opens (`PasswordCheck.verify`), and
the caller confirms inside it that the password is still the one checked
(`PasswordCheck.still`): the hash takes tens of milliseconds and may wait for a free
hashing slot, and on SQLite every write transaction holds the database's one write
lock, so no hash may run inside one."""

from collections.abc import Callable
from dataclasses import dataclass

from gateway.domain.accounts import email_lookup_form
from gateway.domain.errors import N_, InvalidInput
from gateway.domain.throttle import (
    ThrottlePolicy,
    ThrottleState,
    after_failure,
    client_network,
    retry_after,
)
from gateway.services.errors import Conflict, TooManyRequests
from gateway.services.ports import Clock, PasswordHasher, ThrottledUnit


def second_factor_key(account_id: str) -> str:
    # The adapter's erasure removes this row too (SqlAccounts.erase_personal_data).
    return f"2fa:{account_id}"


def password_key(account_id: str) -> str:
    # Erased with the account too; logins check it and a successful one clears it.
    return f"pw:{account_id}"


def network_key(blind_index: Callable[[str], str], email_key: str, ip: str | None) -> str:
    """The login counter of one email from one client network; a blind index again, so
    the table shows neither the network nor which email it belongs to."""
    return blind_index(f"login-net:{email_key}:{client_network(ip)}")


# The customer's words for each counter's lock (translated where they are shown).
TOO_MANY = {"password attempts": N_("too many failed password attempts; wait and retry"),
            "two-factor codes": N_("too many failed two-factor codes; wait and retry")}


class Attempts:
    def __init__(self, policy: ThrottlePolicy, clock: Clock) -> None:
        self._policy = policy
        self._clock = clock

    async def open(self, uow: ThrottledUnit, key: str, what: str) -> ThrottleState | None:
        """The counter, locked for the transaction; `TooManyRequests` while it is locked."""
        state = await uow.throttle.get(key)
        wait = retry_after(state, self._clock())
        if wait is not None:
            raise TooManyRequests(TOO_MANY.get(what, f"too many failed {what}; wait and retry"),
                                  wait.total_seconds())
        return state

    async def failed(self, uow: ThrottledUnit, key: str, state: ThrottleState | None) -> None:
        await uow.throttle.put(key, after_failure(state, self._clock(), self._policy))
        await uow.commit()

    async def passed(self, uow: ThrottledUnit, key: str, state: ThrottleState | None) -> None:
        if state is not None:
            await uow.throttle.clear(key)


@dataclass(frozen=True)
class CheckedPassword:
    """A password found right, outside any transaction; `still` confirms it inside one."""

    account_id: str
    key: str  # the email's blind index
    password_hash: str
    had_failures: bool


class PasswordCheck:
    """The password of a logged-in customer, counted like a login."""

    def __init__(self, uow: Callable[[], ThrottledUnit], passwords: PasswordHasher,
                 blind_index: Callable[[str], str], attempts: Attempts) -> None:
        self._uow = uow
        self._passwords = passwords
        self._index = blind_index
        self._attempts = attempts

    async def verify(self, account_id: str, password: str | None,
                     field: str = "current_password") -> CheckedPassword:
        """Outside any transaction: `InvalidInput` when wrong (the failure is counted and
        committed), `TooManyRequests` while the counter is locked."""
        if not password:
            raise InvalidInput(field, N_("is required"))
        counter = password_key(account_id)
        async with self._uow() as uow:
            profile = await uow.accounts.profile(account_id)
            key = self._index(email_lookup_form(profile.email))
            state = await self._attempts.open(uow, counter, "password attempts")
            login = await uow.accounts.find_login(key)
        if login is None or not await self._passwords.verify(login.password_hash, password):
            async with self._uow() as uow:
                # Read again: failures counted meanwhile by requests alongside add up.
                await self._attempts.failed(uow, counter, await uow.throttle.get(counter))
            raise InvalidInput(field, N_("is wrong"))
        return CheckedPassword(account_id, key, login.password_hash, state is not None)

    async def still(self, uow: ThrottledUnit, checked: CheckedPassword) -> None:
        """Inside the caller's transaction: the account still has that email and password
        (nothing changed them between the check and now); clears the failure counter."""
        login = await uow.accounts.find_login(checked.key)
        if (login is None or login.account.id != checked.account_id
                or login.password_hash != checked.password_hash):
            raise Conflict(N_("your password or email changed meanwhile; try again"))
        if checked.had_failures:
            await uow.throttle.clear(password_key(checked.account_id))
