"""Two-factor authentication (TOTP, RFC 6238) with single-use recovery codes."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gateway.domain.errors import N_, InvalidInput
from gateway.domain.throttle import retry_after
from gateway.services.attempts import Attempts, PasswordCheck, second_factor_key
from gateway.services.errors import Conflict, Unauthorized
from gateway.services.ports import (
    Clock,
    PasswordHasher,
    TotpCodes,
    TotpState,
    TwoFactorUnit,
)


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str


@dataclass(frozen=True)
class CheckedCode:
    """A second-factor code as judged before the caller's transaction (`TwoFactorService
    .check`): a recovery code already matched against the account's unused ones, since
    each is an argon2 hash (tens of ms) and no hash may run while a transaction holds
    SQLite's one write lock. Inside the transaction `require` only spends it."""

    code: str | None
    recovery_id: int | None = None  # the unused recovery code it matched


class SecondFactor:
    """Checks a second factor inside the caller's transaction: a TOTP code whose time step
    is newer than the last accepted one, or a recovery code matched beforehand (then
    spent, unless it was spent meanwhile)."""

    def __init__(self, codes: TotpCodes, hasher: PasswordHasher, clock: Clock) -> None:
        self._codes = codes
        self._hasher = hasher
        self._clock = clock

    async def enabled(self, uow: TwoFactorUnit, account_id: str) -> bool:
        return (await uow.accounts.totp(account_id)).enabled

    async def match_recovery(self, unused: list[tuple[int, str]], code: str) -> int | None:
        """Outside any transaction: the id of the unused recovery code `code` is."""
        if not self._codes.looks_like_recovery_code(code):
            return None
        candidate = code.strip().lower()
        for code_id, code_hash in unused:
            if await self._hasher.verify(code_hash, candidate):
                return code_id
        return None

    async def accept(self, uow: TwoFactorUnit, account_id: str, checked: CheckedCode) -> bool:
        state = await uow.accounts.totp(account_id)
        if state.secret is None or not checked.code:
            return False
        step = self._codes.matching_step(state.secret, checked.code, self._clock())
        if step is not None:
            # A code already accepted, or an older one, is a replay: refused in the UPDATE
            # itself, so two requests racing with one code cannot both read an old step.
            return await uow.accounts.advance_totp_step(account_id, step)
        if checked.recovery_id is None:
            return False
        # Refused in the UPDATE when it was spent (or the codes replaced) meanwhile.
        return await uow.accounts.use_recovery_code(checked.recovery_id, self._clock())


class TwoFactorService:
    def __init__(self, uow: Callable[[], TwoFactorUnit], *, codes: TotpCodes,
                 hasher: PasswordHasher, factor: SecondFactor, clock: Clock,
                 passwords: PasswordCheck, attempts: Attempts,
                 reader: Callable[[], TwoFactorUnit] | None = None) -> None:
        self._uow = uow
        self._reader = reader or uow  # reads only: no write turn, no write lock
        self._codes = codes
        self._hasher = hasher
        self._factor = factor
        self._clock = clock
        self._passwords = passwords
        self._attempts = attempts

    async def check(self, account_id: str, code: str | None) -> CheckedCode:
        """Before the caller's transaction: matches a recovery code against the account's
        unused ones (none while the second-factor counter is locked: `require` refuses
        then without looking at the code)."""
        if not code or not self._codes.looks_like_recovery_code(code):
            return CheckedCode(code)
        async with self._uow() as uow:
            if retry_after(await uow.throttle.get(second_factor_key(account_id)),
                           self._clock()) is not None:
                return CheckedCode(code)
            unused = await uow.accounts.unused_recovery_codes(account_id)
        return CheckedCode(code, await self._factor.match_recovery(unused, code))

    async def is_on(self, account_id: str) -> bool:
        async with self._reader() as uow:
            return (await uow.accounts.totp(account_id)).enabled

    async def begin(self, account_id: str, password: str | None) -> Enrolment:
        """A new secret, pending until a code made from it is confirmed. Needs the
        password: a stolen session alone must not put an attacker's authenticator on."""
        secret = self._codes.new_secret()
        checked = await self._passwords.verify(account_id, password)
        async with self._uow() as uow:
            if (await uow.accounts.totp(account_id)).enabled:
                raise Conflict(N_("two-factor authentication is already on; turn it off first"))
            await self._passwords.still(uow, checked)
            await uow.accounts.set_totp(account_id, secret, None, None)
            await uow.commit()
        return Enrolment(secret, self._codes.uri(secret, account_id))

    async def confirm(self, account_id: str, code: str, ip: str | None = None,
                      keep_session: str | None = None) -> list[str]:
        """Turns 2FA on; returns 10 single-use recovery codes, shown this once. Every
        other session ends (one opened without the second factor must not outlive it);
        `keep_session`, the one turning it on, stays."""
        now = self._clock()
        # The code is checked before anything is hashed: ten argon2 hashes for a wrong
        # code would let any session burn the hashing threads. The codes are then hashed
        # before the transaction (no hash holds the write lock), which checks again.
        async with self._uow() as uow:
            self._confirmable(await uow.accounts.totp(account_id), code, now)
        recovery = self._codes.recovery_codes(10)
        hashes = [await self._hasher.hash(c) for c in recovery]
        async with self._uow() as uow:
            secret, step = self._confirmable(await uow.accounts.totp(account_id), code, now)
            await uow.accounts.set_totp(account_id, secret, now, step)
            await uow.accounts.replace_recovery_codes(account_id, hashes)
            await uow.sessions.revoke_all(account_id, now, keep=keep_session)
            await uow.security_log.add(account_id, "totp_enabled", ip, now)
            await uow.commit()
        return recovery

    def _confirmable(self, state: TotpState, code: str, now: datetime) -> tuple[str, int]:
        """The pending secret and the time step of `code` if it turns two-factor on now;
        else why not."""
        if state.enabled:
            raise Conflict(N_("two-factor authentication is already on"))
        if state.secret is None:
            raise InvalidInput("code", N_("start with POST /v1/me/totp first"))
        step = self._codes.matching_step(state.secret, code, now)
        if step is None:
            raise InvalidInput("code", N_("is not the current code of your authenticator"))
        return state.secret, step

    async def disable(self, account_id: str, password: str | None, code: str,
                      ip: str | None = None) -> None:
        checked = await self._passwords.verify(account_id, password)
        second = await self.check(account_id, code)
        async with self._uow() as uow:
            if not (await uow.accounts.totp(account_id)).enabled:
                raise Conflict(N_("two-factor authentication is not on"))
            await self._passwords.still(uow, checked)
            await self.require_field(uow, account_id, second, "code")
            await uow.accounts.set_totp(account_id, None, None, None)
            await uow.accounts.replace_recovery_codes(account_id, [])
            await uow.security_log.add(account_id, "totp_disabled", ip, self._clock())
            await uow.commit()

    async def require(self, uow: TwoFactorUnit, account_id: str, checked: CheckedCode) -> None:
        """Nothing when 2FA is off; otherwise a valid, unused code (`check`ed before the
        transaction). Wrong codes count on the account's one second-factor counter
        (committed before `Unauthorized`); while it is locked, `TooManyRequests` without
        looking at the code."""
        if not await self._factor.enabled(uow, account_id):
            return
        key = second_factor_key(account_id)
        state = await self._attempts.open(uow, key, "two-factor codes")
        if not checked.code:
            raise Unauthorized(N_("a two-factor code is required (totp_code)"))
        if not await self._factor.accept(uow, account_id, checked):
            await self._attempts.failed(uow, key, state)
            raise Unauthorized(N_("the two-factor code is wrong or was already used"))
        await self._attempts.passed(uow, key, state)

    async def require_field(self, uow: TwoFactorUnit, account_id: str, checked: CheckedCode,
                            field: str = "totp_code") -> None:
        """`require` for a logged-in customer's form: a wrong code is invalid input."""
        try:
            await self.require(uow, account_id, checked)
        except Unauthorized as exc:
            raise InvalidInput(field, str(exc)) from None
