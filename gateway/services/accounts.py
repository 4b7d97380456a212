from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.domain.accounts import (
    Account,
    check_choice,
    check_password,
    email_lookup_form,
    normalize_email,
)
from gateway.domain.errors import InvalidInput
from gateway.services.errors import Conflict, NotFound, Unauthorized
from gateway.services.ids import new_id
from gateway.services.ports import (
    Clock,
    PasswordHasher,
    Profile,
    SessionRecord,
    SessionTokenCodec,
    UnitOfWorkFactory,
)


@dataclass(frozen=True)
class AccountPolicy:
    datacenters: tuple[str, ...]
    currencies: tuple[str, ...]
    policy_version: str
    session_lifetime: timedelta = timedelta(hours=8)


@dataclass(frozen=True)
class Signup:
    email: str
    password: str
    display_name: str | None = None
    company: str | None = None
    datacenter: str | None = None
    currency: str | None = None


@dataclass(frozen=True)
class AccountView:
    account: Account
    profile: Profile


@dataclass(frozen=True)
class NewSession:
    token: str
    session_id: str
    account_id: str
    expires_at: datetime


def _optional_text(value: str | None, field: str, limit: int = 200) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(field, f"must be at most {limit} characters")
    return value or None


class AccountService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        passwords: PasswordHasher,
        blind_index: Callable[[str], str],
        tokens: SessionTokenCodec,
        clock: Clock,
        policy: AccountPolicy,
    ) -> None:
        self._uow = uow
        self._passwords = passwords
        self._index = blind_index
        self._tokens = tokens
        self._clock = clock
        self._policy = policy

    async def sign_up(self, req: Signup) -> AccountView:
        email = normalize_email(req.email)
        password = check_password(req.password)
        profile = Profile(
            email,
            _optional_text(req.display_name, "display_name"),
            _optional_text(req.company, "company"),
        )
        datacenter = check_choice(req.datacenter, self._policy.datacenters, "datacenter")
        currency = check_choice(req.currency, self._policy.currencies, "currency")
        now = self._clock()
        account = Account(new_id("acc_"), now, datacenter, currency)
        account.created()
        password_hash = self._passwords.hash(password)
        async with self._uow() as uow:
            await uow.accounts.add(
                account, profile, self._index(email_lookup_form(email)), password_hash,
                self._policy.policy_version,
            )
            await uow.outbox.publish(account.events, now)
            await uow.commit()
        return AccountView(account, profile)

    async def log_in(self, email: str, password: str) -> NewSession:
        # One answer for unknown email and wrong password; the hasher spends the same
        # time on a dummy hash when there is no account.
        try:
            lookup = self._index(email_lookup_form(normalize_email(email)))
        except InvalidInput:
            lookup = None
        now = self._clock()
        async with self._uow() as uow:
            login = await uow.accounts.find_login(lookup) if lookup else None
            stored = login.password_hash if login else None
            if not self._passwords.verify(stored, password) or login is None:
                raise Unauthorized("email or password is wrong")
            if self._passwords.needs_rehash(login.password_hash):
                await uow.accounts.set_password_hash(
                    login.account.id, self._passwords.hash(password)
                )
            session = SessionRecord(
                new_id("ses_"), login.account.id, now + self._policy.session_lifetime, None
            )
            await uow.sessions.add(session, now)
            await uow.commit()
        token = self._tokens.issue(session.account_id, session.id, now, session.expires_at)
        return NewSession(token, session.id, session.account_id, session.expires_at)

    async def authenticate(self, token: str) -> str:
        """Account id for a live session token; `Unauthorized` otherwise."""
        now = self._clock()
        claims = self._tokens.decode(token, now)
        async with self._uow() as uow:
            session = await uow.sessions.get(claims.session_id)
        if (
            session is None
            or session.account_id != claims.account_id
            or session.revoked_at is not None
            or session.expires_at <= now
        ):
            raise Unauthorized("session is not valid")
        return session.account_id

    async def log_out(self, token: str) -> None:
        now = self._clock()
        claims = self._tokens.decode(token, now)
        async with self._uow() as uow:
            await uow.sessions.revoke(claims.session_id, now)
            await uow.commit()

    async def view(self, account_id: str) -> AccountView:
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id)
            if account is None:
                raise NotFound("account")
            return AccountView(account, await uow.accounts.profile(account_id))

    async def exists(self, account_id: str) -> bool:
        async with self._uow() as uow:
            return await uow.accounts.get(account_id) is not None


__all__ = ["AccountPolicy", "AccountService", "AccountView", "Conflict", "NewSession", "Signup"]
