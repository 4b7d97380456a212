"""Accounts, sessions, API keys, sign-in throttling and the security log; password
hashing, TOTP and session tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.domain.accounts import Account
from gateway.domain.throttle import ThrottleState


@dataclass(frozen=True)
class Profile:
    email: str
    display_name: str | None = None
    company: str | None = None


@dataclass(frozen=True)
class Login:
    account: Account
    password_hash: str


@dataclass(frozen=True)
class SessionRecord:
    id: str
    account_id: str
    expires_at: datetime
    revoked_at: datetime | None
    last_seen_at: datetime | None = None


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    name: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class TotpState:
    secret: str | None
    enabled: bool
    last_step: int | None


@dataclass(frozen=True)
class AccountDetails:
    email_verified_at: datetime | None
    totp_enabled_at: datetime | None


# The account repository in parts, one per concern; a unit names the parts its service
# uses (`units.py`), so a fake implements those and no more. `AccountRepository` is all of
# them: what the SQL repository provides.
class AccountStore(Protocol):
    """The account itself: add, load, save, and find it by its email's blind index."""

    async def add(
        self, account: Account, profile: Profile, email_index: str, password_hash: str,
        policy_version: str,
    ) -> None:
        """Raises `Conflict` when the email index is taken."""

    async def get(self, account_id: str, for_update: bool = False) -> Account | None: ...

    async def save(self, account: Account) -> None: ...

    async def profile(self, account_id: str) -> Profile: ...

    async def find_login(self, email_index: str) -> Login | None: ...

    async def update_profile(self, account_id: str, profile: Profile, email_index: str) -> None:
        """Re-encrypts every personal field; raises `Conflict` when the email is taken."""

    async def details(self, account_id: str) -> AccountDetails: ...


class AccountCredentials(Protocol):
    """The password, the email's verification (and the undo window of a change), logins."""

    async def set_password_hash(self, account_id: str, password_hash: str) -> None: ...

    async def email_verified(self, account_id: str) -> bool: ...

    async def mark_email_verified(self, account_id: str, now: datetime) -> None: ...

    async def email_undo_until(self, account_id: str) -> datetime | None: ...

    async def set_email_undo_until(self, account_id: str, until: datetime | None) -> None: ...

    async def record_login(self, account_id: str, now: datetime) -> None: ...


class SecondFactor(Protocol):
    """TOTP and recovery codes."""

    async def totp(self, account_id: str) -> TotpState: ...

    async def set_totp(self, account_id: str, secret: str | None, enabled_at: datetime | None,
                       last_step: int | None) -> None: ...

    async def advance_totp_step(self, account_id: str, step: int) -> bool:
        """Records `step` as the last accepted one, atomically, only when it is newer than
        the recorded one; False when it is not (a replay, maybe a concurrent one)."""

    async def replace_recovery_codes(self, account_id: str, hashes: list[str]) -> None: ...

    async def unused_recovery_codes(self, account_id: str) -> list[tuple[int, str]]: ...

    async def use_recovery_code(self, code_id: int, now: datetime) -> bool:
        """Marks an unused code used; False when another request spent it first."""


class AccountConsent(Protocol):
    """The objection to optional processing, and which policy notices went out."""

    async def set_objection(self, account_id: str, at: datetime | None) -> None:
        """`at`: since when the customer objects to optional processing; None: not."""
        ...

    async def objection(self, account_id: str) -> datetime | None: ...

    async def notice_recipients(self, version: str) -> list[str]: ...

    async def record_notice(self, account_id: str, version: str, now: datetime) -> None: ...


class AccountLifecycle(Protocol):
    """Retention's queries: deletion due, inactive and lapsed accounts, erasure."""

    async def due_for_deletion(self, now: datetime) -> list[str]: ...

    async def alive_among(self, account_ids: list[str]) -> list[str]: ...

    async def to_warn_of_inactivity(self, last_active_before: datetime) -> list[str]: ...

    async def still_inactive(self, account_id: str, unpaid_before: datetime,
                             lapsed_before: datetime, warned_before: datetime) -> bool: ...

    async def warned_of_inactivity(self, account_id: str, now: datetime) -> None: ...

    async def inactive_after_notice(self, last_active_before: datetime,
                                    warned_before: datetime) -> list[str]: ...

    async def lapsed_to_warn(self, last_active_before: datetime) -> list[str]:
        """Accounts that paid once, whose paid time, last payment, login and session use
        all lie before the cut-off, and that hold no notice sent since."""
        ...

    async def lapsed_after_notice(self, last_active_before: datetime,
                                  warned_before: datetime) -> list[str]:
        """Those accounts still idle, warned since the cut-off and before
        `warned_before`."""
        ...

    async def erase_personal_data(self, account_id: str) -> None:
        """Email, names, password, two-factor data, sessions, preferences and the account's
        security log go; the row stays as a tombstone."""


# The parts together, as the units need them.
class SignInAccounts(AccountStore, AccountCredentials, SecondFactor, Protocol):
    """Sign-up and sign-in, password resets, email changes (all may ask for a second
    factor)."""


class FactorAccounts(AccountStore, SecondFactor, Protocol):
    """Two-factor authentication (its throttled checks read the account too)."""


class NoticeAccounts(AccountStore, AccountConsent, Protocol):
    """Policy notices: to whom, minus the objectors to optional ones."""


class PrivacyAccounts(AccountStore, SecondFactor, AccountConsent, Protocol):
    """Export, correction and objection (a change may ask for a second factor)."""


class RetentionAccounts(AccountStore, AccountLifecycle, Protocol):
    """Scheduled retention and erasure."""


class AccountRepository(AccountStore, AccountCredentials, SecondFactor, AccountConsent,
                        AccountLifecycle, Protocol):
    """Every part: what the SQL repository provides."""


class SessionRepository(Protocol):
    async def add(self, session: SessionRecord, now: datetime) -> None: ...

    async def get(self, session_id: str) -> SessionRecord | None: ...

    async def revoke(self, session_id: str, now: datetime) -> None: ...

    async def revoke_all(self, account_id: str, now: datetime, keep: str | None = None) -> int:
        ...

    async def touch(self, session_id: str, now: datetime) -> None: ...


class ApiKeyRepository(Protocol):
    async def add(self, record: ApiKeyRecord, key_hash: str) -> None: ...

    async def by_hash(self, key_hash: str) -> ApiKeyRecord | None: ...

    async def all(self) -> list[ApiKeyRecord]: ...

    async def revoke(self, key_id: str, at: datetime) -> bool:
        """True when a key that was live is now revoked."""


class ThrottleRepository(Protocol):
    async def get(self, key: str) -> ThrottleState | None:
        """Locked for the rest of the transaction: concurrent failures all count."""

    async def put(self, key: str, state: ThrottleState) -> None: ...

    async def clear(self, key: str) -> None: ...


@dataclass(frozen=True)
class SecurityEntry:
    event: str
    ip: str | None
    at: datetime


class SecurityLog(Protocol):
    async def add(self, account_id: str | None, event: str, ip: str | None,
                  at: datetime) -> None: ...

    async def for_account(self, account_id: str) -> list[SecurityEntry]: ...

    async def encrypt_legacy(self) -> int:
        """Encrypts addresses of rows written before they were encrypted."""
        ...

    async def purge(self, before: datetime, dry_run: bool) -> int:
        """Entries older than `before`: deleted, or only counted."""


class PasswordHasher(Protocol):
    """Hashing is slow on purpose: both calls run off the event loop, and may raise
    `ServiceUnavailable` when too many are waiting."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, stored: str | None, password: str) -> bool: ...

    def needs_rehash(self, stored: str) -> bool: ...


class TotpCodes(Protocol):
    def new_secret(self) -> str: ...

    def uri(self, secret: str, label: str) -> str: ...

    def matching_step(self, secret: str, code: str, now: datetime) -> int | None: ...

    def looks_like_recovery_code(self, code: str) -> bool:
        """Whether the input has the shape of a recovery code (worth an argon2 check)."""

    def recovery_codes(self, count: int = 10) -> list[str]: ...


@dataclass(frozen=True)
class SessionClaims:
    account_id: str
    session_id: str


class SessionTokenCodec(Protocol):
    def issue(self, account_id: str, session_id: str, now: datetime, expires_at: datetime) -> str:
        ...

    def decode(self, token: str, now: datetime) -> SessionClaims:
        """Raises `Unauthorized` for any token that is not ours, valid and current."""
