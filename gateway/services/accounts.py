from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from gateway import i18n
from gateway.domain.accounts import (
    Account,
    check_choice,
    check_password,
    email_lookup_form,
    normalize_email,
)
from gateway.domain.errors import N_, InvalidInput
from gateway.domain.throttle import ThrottlePolicy, after_failure, retry_after
from gateway.services.attempts import Attempts, PasswordCheck, network_key, password_key
from gateway.services.errors import (
    Conflict,
    NotFound,
    TooManyRequests,
    Unauthorized,
    UnconfirmedEmail,
)
from gateway.services.ids import new_id
from gateway.services.ports import (
    AccountsUnit,
    Clock,
    Login,
    PasswordHasher,
    Profile,
    SessionRecord,
    SessionTokenCodec,
)
from gateway.services.two_factor import CheckedCode, TwoFactorService


@dataclass(frozen=True)
class AccountPolicy:
    datacenters: tuple[str, ...]
    currencies: tuple[str, ...]
    policy_version: str
    session_lifetime: timedelta = timedelta(hours=8)
    session_idle: timedelta = timedelta(minutes=30)
    require_email_verification: bool = False


def email_policy(per_network: ThrottlePolicy, cap: int) -> ThrottlePolicy:
    """The per-email counter across all networks: no delays, only the hourly cap."""
    return ThrottlePolicy(free_failures=cap, base_delay=per_network.base_delay,
                          max_delay=per_network.max_delay, window=per_network.window,
                          max_failures_per_window=cap)


# last_seen_at is written at most this often, so reads do not all become writes.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class ProfileChanges:
    """Only the fields given are changed; None clears an optional field."""

    fields: dict[str, str | None]


@dataclass(frozen=True)
class Signup:
    email: str
    password: str
    display_name: str | None = None
    company: str | None = None
    datacenter: str | None = None
    currency: str | None = None
    language: str | None = None  # the signup page's: the account's mails are in it


@dataclass(frozen=True)
class AccountView:
    account: Account
    profile: Profile
    # Signup with verification on, for an address that already has an account: this view
    # was never stored; it only makes the answer look like one for a free address.
    taken: bool = False


@dataclass(frozen=True)
class NewSession:
    token: str
    session_id: str
    account_id: str
    expires_at: datetime


@dataclass(frozen=True)
class _LoginAttempt:
    """Whose login this is, for the counters and the security log."""

    lookup: str  # the email's blind index
    net: str  # the client network's counter key
    ip: str | None
    now: datetime


def _optional_text(value: str | None, field: str, limit: int = 200) -> str | None:
    if value is None:
        return None
    if len(value) > limit:  # as given: what the OpenAPI document's maxLength says
        raise InvalidInput(field, N_("must be at most %(n)s characters"), n=limit)
    return value.strip() or None


class AccountService:
    def __init__(
        self,
        uow: Callable[[], AccountsUnit],
        *,
        passwords: PasswordHasher,
        blind_index: Callable[[str], str],
        tokens: SessionTokenCodec,
        clock: Clock,
        policy: AccountPolicy,
        two_factor: TwoFactorService | None = None,
        throttle: ThrottlePolicy | None = None,
        reader: Callable[[], AccountsUnit] | None = None,
        email_throttle: ThrottlePolicy | None = None,
        common_passwords: Callable[[str], bool] | None = None,
    ) -> None:
        self._uow = uow
        self._reader = reader or uow  # session checks read; they write only now and then
        self._passwords = passwords
        self._index = blind_index
        self._tokens = tokens
        self._clock = clock
        self._policy = policy
        self._two_factor = two_factor
        self._throttle = throttle or ThrottlePolicy()
        self._email_throttle = email_throttle or email_policy(self._throttle, 100)
        self._common = common_passwords

    async def sign_up(self, req: Signup) -> AccountView:
        email = normalize_email(req.email)
        password = check_password(req.password, common=self._common)
        profile = Profile(
            email,
            _optional_text(req.display_name, "display_name"),
            _optional_text(req.company, "company"),
        )
        datacenter = check_choice(req.datacenter, self._policy.datacenters, "datacenter")
        currency = check_choice(req.currency, self._policy.currencies, "currency")
        now = self._clock()
        account = Account(new_id("acc_"), now, datacenter, currency,
                          language=i18n.supported(req.language))
        account.created()
        password_hash = await self._passwords.hash(password)
        async with self._uow() as uow:
            try:
                await uow.accounts.add(
                    account, profile, self._index(email_lookup_form(email)), password_hash,
                    self._policy.policy_version,
                )
            except Conflict:
                if not self._policy.require_email_verification:
                    raise  # signup logs in at once: taken and free cannot look alike
                # The same answer as for a free address; nothing is stored, and the
                # address' owner is told instead (see the signup route).
                account.events.clear()
                return AccountView(account, profile, taken=True)
            await uow.commit()
        return AccountView(account, profile)

    async def log_in(self, email: str, password: str, second: str | None = None,
                     ip: str | None = None) -> NewSession:
        # One answer for unknown email and wrong password; the hasher spends the same
        # time on a dummy hash when there is no account. Failures are counted per email
        # (by its blind index, whether or not an account has it) and client network,
        # with doubling delays, and per email alone with only a high hourly cap: a
        # stranger's failures from elsewhere do not lock the owner out, and a flood from
        # many networks stops at the cap (which a password reset clears).
        try:
            lookup = self._index(email_lookup_form(normalize_email(email)))
        except InvalidInput:
            lookup = self._index("invalid:" + email.strip().lower())
        net = network_key(self._index, lookup, ip)
        async with self._uow() as uow:
            found = await self._login_of(uow, lookup, net)
        # The hash runs with no transaction open: on SQLite every transaction holds the
        # write lock, and nothing else could write (or read) while a password is hashed.
        stored = found.password_hash if found else None
        correct = await self._passwords.verify(stored, password)
        rehashed = None
        if correct and stored is not None and self._passwords.needs_rehash(stored):
            rehashed = await self._passwords.hash(password)
        # A recovery code is matched here too, not inside the transaction below; and
        # only behind the right password.
        checked_code = (await self._two_factor.check(found.account.id, second)
                        if self._two_factor is not None and correct and found is not None
                        else CheckedCode(second))
        now = self._clock()
        attempt = _LoginAttempt(lookup, net, ip, now)
        async with self._uow() as uow:
            # Again: failures recorded meanwhile by requests running alongside count too.
            login = await self._login_of(uow, lookup, net)
            if not correct or login is None or login.password_hash != stored:
                await self._refuse(uow, attempt, login.account.id if login else None,
                                   Unauthorized(self._wrong_login))
            await self._past_the_password(uow, attempt, login.account.id, checked_code)
            session = await self._admit(uow, attempt, login.account.id, rehashed)
        token = self._tokens.issue(session.account_id, session.id, now, session.expires_at)
        return NewSession(token, session.id, session.account_id, session.expires_at)

    async def _login_of(self, uow: AccountsUnit, lookup: str, net: str) -> Login | None:
        """The account the email's index finds (and its password hash), once neither the
        email, the network nor the account's password counter is locked."""
        await self._not_throttled(uow, lookup, net)
        found = await uow.accounts.find_login(lookup)
        if found is not None:
            await self._not_throttled(uow, password_key(found.account.id))
        return found

    async def _refuse(self, uow: AccountsUnit, attempt: _LoginAttempt,
                      account_id: str | None, error: Exception) -> NoReturn:
        """A failed login: counted, logged, committed; then `error`."""
        await self._count_failure(uow, attempt.lookup, attempt.net, attempt.now)
        await uow.security_log.add(account_id, "login_failed", attempt.ip, attempt.now)
        await uow.commit()
        raise error from None

    async def _past_the_password(self, uow: AccountsUnit, attempt: _LoginAttempt,
                                 account_id: str, checked_code: CheckedCode) -> None:
        """The checks behind a right password: the second factor, a confirmed address."""
        if self._two_factor is not None:
            # Past the password only: a wrong code counts on the account's
            # second-factor counter (shared with reset and removal), and like a wrong
            # password on the login counters. A missing or wrong code, or a locked
            # second-factor counter, is answered exactly like a wrong password: a
            # different answer would tell a guesser that the password was right.
            try:
                await self._two_factor.require(uow, account_id, checked_code)
            except (Unauthorized, TooManyRequests):
                await self._refuse(uow, attempt, account_id, Unauthorized(self._wrong_login))
        if (self._policy.require_email_verification
                and not await uow.accounts.email_verified(account_id)):
            # Counted and answered like a wrong password: whoever signed up with
            # someone else's address (which answers like a free one) must not learn
            # here that it was taken.
            await self._refuse(uow, attempt, account_id,
                               UnconfirmedEmail(self._wrong_login, account_id))

    async def _admit(self, uow: AccountsUnit, attempt: _LoginAttempt, account_id: str,
                     rehashed: str | None) -> SessionRecord:
        """A successful login: counters cleared, logged, a new session; committed."""
        now = attempt.now
        for key in (attempt.lookup, attempt.net, password_key(account_id)):
            await uow.throttle.clear(key)
        await uow.security_log.add(account_id, "login_succeeded", attempt.ip, now)
        await uow.accounts.record_login(account_id, now)
        if rehashed is not None:
            await uow.accounts.set_password_hash(account_id, rehashed)
        session = SessionRecord(
            new_id("ses_"), account_id, now + self._policy.session_lifetime, None
        )
        await uow.sessions.add(session, now)
        await uow.commit()
        return session

    async def _count_failure(self, uow: AccountsUnit, lookup: str, net: str,
                             now: datetime) -> None:
        await uow.throttle.put(net, after_failure(await uow.throttle.get(net), now,
                                                  self._throttle))
        await uow.throttle.put(lookup, after_failure(await uow.throttle.get(lookup), now,
                                                     self._email_throttle))

    @property
    def _wrong_login(self) -> str:
        # One text for every refusal: wrong password, unknown email, missing or wrong
        # second factor, unconfirmed address.
        wrong = ("email, password or two-factor code (totp_code, if you turned two-factor "
                 "on) is wrong")
        if self._policy.require_email_verification:
            return (f"{wrong}, or the address is not confirmed yet (then a new confirmation "
                    "link is on its way)")
        return wrong

    async def _not_throttled(self, uow: AccountsUnit, *keys: str) -> None:
        for key in keys:
            wait = retry_after(await uow.throttle.get(key), self._clock())
            if wait is not None:
                raise TooManyRequests(N_("too many failed logins for this email; wait and retry"),
                                      wait.total_seconds())

    async def authenticate(self, token: str) -> str:
        """Account id for a live session token; `Unauthorized` otherwise."""
        return (await self.session(token)).account_id

    async def session(self, token: str) -> SessionRecord:
        """The live session a token names: signed by us, not revoked, not past its absolute
        lifetime, not idle for longer than the idle timeout."""
        now = self._clock()
        claims = self._tokens.decode(token, now)
        # Most checks only read; the rare one that must revoke or touch the session reads
        # it again in a writing unit.
        async with self._reader() as reader:
            session = await self._live(reader, claims.session_id, claims.account_id, now)
            idle = now - (session.last_seen_at or now)
            if idle < min(TOUCH_EVERY, self._policy.session_idle / 4):
                return session
        async with self._uow() as uow:
            session = await self._live(uow, claims.session_id, claims.account_id, now)
            seen = session.last_seen_at or now
            if now - seen > self._policy.session_idle:
                await uow.sessions.revoke(session.id, now)
                await uow.commit()
                raise Unauthorized(N_("session ended after inactivity; log in again"))
            if now - seen >= min(TOUCH_EVERY, self._policy.session_idle / 4):
                await uow.sessions.touch(session.id, now)
                await uow.commit()
        return session

    @staticmethod
    async def _live(uow: AccountsUnit, session_id: str, account_id: str,
                    now: datetime) -> SessionRecord:
        session = await uow.sessions.get(session_id)
        if (
            session is None
            or session.account_id != account_id
            or session.revoked_at is not None
            or session.expires_at <= now
        ):
            raise Unauthorized(N_("session is not valid"))
        return session

    async def change_password(self, token: str, current: str, new: str,
                              ip: str | None = None) -> None:
        """Needs the current password; ends every other session of the account."""
        session = await self.session(token)
        new = check_password(new, "new_password", self._common)
        checks = PasswordCheck(self._uow, self._passwords, self._index,
                               Attempts(self._throttle, self._clock))
        checked = await checks.verify(session.account_id, current)
        new_hash = await self._passwords.hash(new)  # both hashes before the transaction
        async with self._uow() as uow:
            account = await uow.accounts.get(session.account_id)
            assert account is not None
            await checks.still(uow, checked)
            await uow.accounts.set_password_hash(account.id, new_hash)
            await uow.sessions.revoke_all(account.id, self._clock(), keep=session.id)
            await uow.security_log.add(account.id, "password_changed", ip, self._clock())
            await uow.commit()

    async def update_profile(self, account_id: str, changes: ProfileChanges) -> AccountView:
        """Names and preferences, applied at once. The email is not among them: it changes
        only through a confirmed link (`EmailChangeService`)."""
        f = changes.fields
        if "email" in f:
            raise InvalidInput("email", "changes through EmailChangeService")
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id, for_update=True)
            if account is None:
                raise NotFound("account")
            old = await uow.accounts.profile(account_id)
            profile = Profile(
                old.email,
                _optional_text(f["display_name"], "display_name")
                if "display_name" in f else old.display_name,
                _optional_text(f["company"], "company") if "company" in f else old.company,
            )
            if "datacenter" in f:
                account.datacenter = check_choice(f["datacenter"], self._policy.datacenters,
                                                  "datacenter")
            if "currency" in f:
                account.currency = check_choice(f["currency"], self._policy.currencies,
                                                "currency")
            await uow.accounts.update_profile(
                account_id, profile, self._index(email_lookup_form(old.email)))
            await uow.accounts.save(account)
            await uow.commit()
        return AccountView(account, profile)

    async def choose_language(self, account_id: str, language: str) -> None:
        """The language the customer chose (the pages' menu): their mails use it."""
        chosen = i18n.supported(language)
        if chosen is None:
            raise InvalidInput("language", f"must be one of {', '.join(i18n.LOCALES)}")
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id, for_update=True)
            if account is None or account.deleted:
                raise NotFound("account")
            if account.language != chosen:
                account.language = chosen
                await uow.accounts.save(account)
                await uow.commit()

    async def log_out(self, token: str) -> None:
        now = self._clock()
        claims = self._tokens.decode(token, now)
        async with self._uow() as uow:
            await uow.sessions.revoke(claims.session_id, now)
            await uow.commit()

    @property
    def requires_verification(self) -> bool:
        return self._policy.require_email_verification

    async def email_verified(self, account_id: str) -> bool:
        async with self._reader() as uow:
            return await uow.accounts.email_verified(account_id)

    async def view(self, account_id: str) -> AccountView:
        async with self._reader() as uow:
            account = await uow.accounts.get(account_id)
            if account is None or account.deleted:
                raise NotFound("account")
            return AccountView(account, await uow.accounts.profile(account_id))

    async def exists(self, account_id: str) -> bool:
        async with self._reader() as uow:
            return await uow.accounts.get(account_id) is not None


__all__ = [
    "AccountPolicy", "AccountService", "AccountView", "Conflict", "NewSession",
    "ProfileChanges", "Signup",
]
