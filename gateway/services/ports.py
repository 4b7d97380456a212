"""What the use cases need from the outside world, as Protocols. Adapters implement them;
tests may substitute them for pure-logic unit tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol, Self

from chains.base import BlockRef, Destination, Lock
from gateway.domain.accounts import Account
from gateway.domain.billing import Extension
from gateway.domain.events import DomainEvent
from gateway.domain.invoices import Invoice
from gateway.domain.payments import PaymentStatus, confirmations, is_locked
from gateway.domain.throttle import ThrottleState

Clock = Callable[[], datetime]


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
class PaymentRecord:
    txid: str
    index: int
    amount: int
    block_hash: str | None
    block_height: int | None
    status: PaymentStatus
    seen_at: datetime
    block_time: datetime | None = None  # of the block it was first seen in; None: mempool
    coin: str = ""
    lock: Lock | None = None  # may not count before this height or time

    def confirmations(self, tip: BlockRef | None) -> int:
        return confirmations(self.status, self.block_height,
                             None if tip is None else tip.height)

    def locked(self, tip: BlockRef | None, now: datetime) -> bool:
        if self.lock is None:
            return False
        return is_locked(self.lock.height, self.lock.time,
                         None if tip is None else tip.height, now)


@dataclass(frozen=True)
class NewPayment:
    """A payment to record, matched to its invoice (`PaymentRepository.record_many`)."""

    coin: str
    txid: str
    index: int
    invoice_id: str
    amount: int
    seen_at: datetime
    lock: Lock | None = None


@dataclass(frozen=True)
class InvoiceRecord:
    """An invoice with where it is paid and what was paid to it, for reading."""

    invoice: Invoice
    address: str
    payment_uri: str
    payments: tuple[PaymentRecord, ...]


@dataclass(frozen=True)
class EndpointRecord:
    id: str
    url: str
    event_types: tuple[str, ...]
    description: str
    enabled: bool
    created_at: datetime


@dataclass(frozen=True)
class TotpState:
    secret: str | None
    enabled: bool
    last_step: int | None


@dataclass(frozen=True)
class AccountDetails:
    email_verified_at: datetime | None
    totp_enabled_at: datetime | None


class AccountRepository(Protocol):
    async def add(
        self, account: Account, profile: Profile, email_index: str, password_hash: str,
        policy_version: str,
    ) -> None:
        """Raises `Conflict` when the email index is taken."""

    async def get(self, account_id: str, for_update: bool = False) -> Account | None: ...

    async def profile(self, account_id: str) -> Profile: ...

    async def find_login(self, email_index: str) -> Login | None: ...

    async def save(self, account: Account) -> None: ...

    async def set_password_hash(self, account_id: str, password_hash: str) -> None: ...

    async def update_profile(self, account_id: str, profile: Profile, email_index: str) -> None:
        """Re-encrypts every personal field; raises `Conflict` when the email is taken."""

    async def totp(self, account_id: str) -> TotpState: ...

    async def email_verified(self, account_id: str) -> bool: ...

    async def mark_email_verified(self, account_id: str, now: datetime) -> None: ...

    async def email_undo_until(self, account_id: str) -> datetime | None: ...

    async def set_email_undo_until(self, account_id: str, until: datetime | None) -> None: ...

    async def set_totp(self, account_id: str, secret: str | None, enabled_at: datetime | None,
                       last_step: int | None) -> None: ...

    async def advance_totp_step(self, account_id: str, step: int) -> bool:
        """Records `step` as the last accepted one, atomically, only when it is newer than
        the recorded one; False when it is not (a replay, maybe a concurrent one)."""

    async def replace_recovery_codes(self, account_id: str, hashes: list[str]) -> None: ...

    async def unused_recovery_codes(self, account_id: str) -> list[tuple[int, str]]: ...

    async def use_recovery_code(self, code_id: int, now: datetime) -> bool:
        """Marks an unused code used; False when another request spent it first."""

    async def details(self, account_id: str) -> AccountDetails: ...

    async def due_for_deletion(self, now: datetime) -> list[str]: ...

    async def record_login(self, account_id: str, now: datetime) -> None: ...

    async def alive_among(self, account_ids: list[str]) -> list[str]: ...

    async def set_objection(self, account_id: str, at: datetime | None) -> None:
        """`at`: since when the customer objects to optional processing; None: not."""
        ...

    async def objection(self, account_id: str) -> datetime | None: ...

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

    async def notice_recipients(self, version: str) -> list[str]: ...

    async def record_notice(self, account_id: str, version: str, now: datetime) -> None: ...


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


class InvoiceRepository(Protocol):
    async def allocate(self, space: str, count: int = 1) -> range:
        """The next `count` indexes of an address space, inside the current transaction:
        never handed out twice, whichever coin of the space asks, on any instance."""

    async def add(self, invoice: Invoice, space: str, destination: Destination,
                  payment_uri: str) -> None: ...

    async def get(self, invoice_id: str, for_update: bool = False) -> Invoice | None: ...

    async def read(self, invoice_id: str) -> InvoiceRecord | None: ...

    async def page(
        self, account_id: str | None, status: str | None, after: str | None, limit: int
    ) -> list[InvoiceRecord]: ...

    async def by_match_keys(self, coin: str, match_keys: Sequence[bytes]) -> dict[bytes,
                                                                                  Invoice]:
        """The invoices these keys belong to, locked to commit."""

    async def get_many(self, invoice_ids: Sequence[str]) -> list[Invoice]:
        """These invoices, locked to commit."""

    async def reaching_depth(self, coins: Sequence[str], after: int, upto: int,
                             max_required: int, now: datetime) -> list[str]:
        """Open invoices with a confirmed payment reaching the required confirmations at a
        tip height in (after, upto]."""

    async def open_for_account(self, account_id: str, now: datetime) -> list[Invoice]:
        """The account's invoices still waiting for payment (status new, not expired),
        newest first."""

    async def open_with_payments(self, coins: Sequence[str], now: datetime) -> list[Invoice]:
        """Invoices whose state may change with a new block: not final, with payments."""

    async def due_by_time(self, now: datetime) -> list[Invoice]:
        """Invoices whose expiry or monitoring window has passed without a transition."""

    async def save(self, invoice: Invoice) -> None: ...

    async def save_many(self, changed: Sequence[Invoice]) -> None: ...

    async def address_usage(self, space: str) -> tuple[int, set[int]]:
        """How many addresses of the space were derived, and the indexes that received a
        confirmed payment."""


class PaymentRepository(Protocol):
    async def record(
        self, coin: str, txid: str, index: int, invoice_id: str, amount: int,
        block: BlockRef | None, seen_at: datetime, block_time: datetime | None = None,
        lock: Lock | None = None,
    ) -> bool:
        """Insert or update; True when this (coin, txid, index) was never seen before.
        `seen_at` and `block_time` (the header time of `block`) are kept only from the
        first sighting."""

    async def disconnect(self, coins: Sequence[str], block_hash: str) -> list[str]:
        """Payments in that block become unconfirmed; returns the affected invoice ids."""

    async def unconfirm(self, coins: Sequence[str], txids: Sequence[str]) -> list[str]:
        """Confirmed payments of these transactions are back out of any block (a reorg
        reported by transaction ids); returns the affected invoice ids."""

    async def revert(self, coins: Sequence[str], txids: Sequence[str]) -> list[str]:
        """Unconfirmed payments of these transactions are gone; returns invoice ids."""


    async def record_many(self, rows: Sequence[NewPayment], block: BlockRef | None,
                          block_time: datetime | None) -> set[tuple[str, str, int]]:
        """Insert or update a batch; returns the (coin, txid, index) never seen before."""

    async def for_invoices(self, invoice_ids: Sequence[str]) -> dict[str, list[PaymentRecord]]:
        ...

    async def unconfirmed_txids(self, coins: Sequence[str]) -> list[str]: ...


class CursorRepository(Protocol):
    """One cursor per feed (a node a follower follows, for one or more coins)."""

    async def get(self, feed: str) -> BlockRef | None: ...

    async def set(self, feed: str, block: BlockRef, now: datetime) -> None: ...

    async def set_catch_up(self, feed: str, state: str | None,
                           since: datetime | None) -> bool:
        """What the feed's follower is doing while its node catches up (None: nothing);
        False when the feed has no cursor yet."""
        ...


class EndpointRepository(Protocol):
    async def add(self, record: EndpointRecord, secret: str) -> None: ...

    async def active(self) -> list[EndpointRecord]: ...

    async def get(self, endpoint_id: str) -> EndpointRecord | None: ...

    async def delete(self, endpoint_id: str, now: datetime) -> bool: ...

    async def rotate(self, endpoint_id: str, secret: str, previous_until: datetime) -> bool:
        """New secret signs from now on; the current one keeps signing until
        `previous_until`."""

    async def set_enabled(self, endpoint_id: str, enabled: bool) -> bool: ...


@dataclass(frozen=True)
class AttemptRecord:
    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None


@dataclass(frozen=True)
class DeliveryRecord:
    id: str
    endpoint_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    log: tuple[AttemptRecord, ...] = ()


@dataclass(frozen=True)
class EventRecord:
    id: str
    type: str
    created_at: datetime
    body: str
    deliveries: tuple[DeliveryRecord, ...] = ()


class EventRepository(Protocol):
    async def page(self, type_: str | None, after: str | None, limit: int) -> list[EventRecord]:
        ...

    async def get(self, event_id: str) -> EventRecord | None:
        """With its deliveries and every attempt."""

    async def redeliver(self, event_id: str, now: datetime) -> int:
        """Deliver again to every enabled endpoint that had it; how many were queued."""

    async def redeliver_failed(self, since: datetime, now: datetime) -> int: ...


@dataclass(frozen=True)
class IdempotencyRecord:
    fingerprint: str
    state: str  # running | done
    owner: str
    invoice_id: str | None
    updated_at: datetime


class IdempotencyRepository(Protocol):
    async def claim(
        self, scope: str, key: str, fingerprint: str, owner: str, now: datetime
    ) -> IdempotencyRecord | None:
        """Insert a running key owned by `owner`; or, when the key exists, return it."""

    async def take_over(
        self, scope: str, key: str, old_owner: str, owner: str, now: datetime
    ) -> bool: ...

    async def complete(self, scope: str, key: str, owner: str, invoice_id: str,
                       now: datetime) -> bool:
        """Mark done, only if `owner` still holds the key."""

    async def release(self, scope: str, key: str, owner: str) -> None: ...


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


class RetentionRepository(Protocol):
    async def sessions(self, now: datetime, dry_run: bool) -> int: ...

    async def idempotency_keys(self, before: datetime, dry_run: bool) -> int: ...

    async def delivery_logs(self, before: datetime, dry_run: bool) -> int: ...

    async def audit_log(self, erased_before: datetime, dry_run: bool) -> int: ...

    async def login_throttle(self, before: datetime, now: datetime, dry_run: bool) -> int: ...

    async def disabled_endpoint_events(self, before: datetime, dry_run: bool) -> int: ...

    async def mail_queue(self, before: datetime, dry_run: bool) -> int:
        """Queued mail older than `before` (the sender drops it too; this is the backstop
        while no sender runs). An inactivity notice dropped un-warns its account."""

    async def owe(self, work: str, now: datetime) -> None:
        """Work a run owes until done (`flush`), kept across restarts; since the first
        time it was owed."""

    async def owed(self, work: str) -> datetime | None: ...

    async def paid(self, work: str) -> None: ...


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str  # an API key id, or cli:<operator>
    account_id: str
    action: str
    fields: tuple[str, ...]
    reason: str | None = None


class AuditLog(Protocol):
    async def add(self, entry: AuditEntry) -> None: ...

    async def for_account(self, account_id: str) -> list[AuditEntry]: ...

    async def encrypt_legacy(self) -> int:
        """Encrypts reasons of rows written before they were encrypted."""
        ...


@dataclass(frozen=True)
class LedgerRow:
    id: int
    seen_at: datetime
    invoice_id: str
    account_id: str
    coin: str
    txid: str
    output_index: int
    amount: int
    decimals: int
    rate: str  # fiat per whole coin, locked on the invoice
    fiat_currency: str
    block_hash: str | None
    block_height: int | None
    status: PaymentStatus
    address: str
    match_key: bytes
    # A settled plan invoice: the plan and the period of the account's time it paid for.
    plan: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None


class Ledger(Protocol):
    async def page(self, start: datetime | None, end: datetime | None, coin: str | None,
                   after: int | None, limit: int) -> list[LedgerRow]: ...

    async def count(self, start: datetime | None, end: datetime | None,
                    coin: str | None) -> int: ...

    async def by_txid(self, txid: str) -> list[LedgerRow]: ...

    async def invoice_keys(self, coin: str) -> dict[bytes, str]: ...


@dataclass(frozen=True)
class StaffMember:
    id: str
    name: str
    role: str
    created_at: datetime
    totp_enabled_at: datetime | None


@dataclass(frozen=True)
class StaffSession:
    id: str
    member: StaffMember
    enrolled: bool  # False: the member has yet to enrol TOTP; nothing else is open
    expires_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class StaffLogEntry:
    staff: str
    action: str
    subject: str | None
    ip: str | None
    at: datetime


class StaffRepository(Protocol):
    async def add(self, member: StaffMember, password_hash: str) -> None:
        """`Conflict` when the name is taken."""

    async def remove(self, name: str) -> bool: ...

    async def all(self) -> list[StaffMember]: ...

    async def by_name(self, name: str) -> tuple[StaffMember, str] | None:
        """The member and their password hash."""

    async def totp(self, staff_id: str) -> tuple[str | None, int | None]:
        """The TOTP secret (pending or enabled) and the last step accepted."""

    async def set_totp_secret(self, staff_id: str, secret: str) -> None: ...

    async def enable_totp(self, staff_id: str, now: datetime) -> None: ...

    async def advance_totp_step(self, staff_id: str, step: int) -> bool:
        """False when `step` is not past the last one accepted (a replayed code)."""

    async def add_session(self, session_id: str, token_hash: str, staff_id: str,
                          enrolled: bool, now: datetime, expires_at: datetime) -> None: ...

    async def session(self, token_hash: str) -> StaffSession | None: ...

    async def touch(self, session_id: str, now: datetime) -> None: ...

    async def revoke(self, session_id: str, now: datetime) -> None: ...

    async def log(self, entry: StaffLogEntry) -> None: ...

    async def recent_log(self, limit: int) -> list[StaffLogEntry]: ...

    async def recent_audit(self, limit: int) -> list[AuditEntry]:
        """The latest access-audit entries for the admin page: without their reasons,
        and none of a legal request still under a hold."""

    async def account_event_ids(self, account_id: str) -> list[str]:
        """The account's webhook events, oldest first."""

    async def invoice_by_address(self, address: str) -> str | None: ...


@dataclass(frozen=True)
class RenewalRecord:
    id: int
    account_id: str
    period_end: datetime  # the paid_until this renewal renews
    invoice_id: str
    created_at: datetime
    first_reminder_at: datetime | None
    second_reminder_at: datetime | None
    invoice_status: str


class BillingRepository(Protocol):
    async def due(self, now: datetime, lead: timedelta, grace: timedelta,
                  limit: int = 500) -> list[str]: ...

    async def renewal(self, account_id: str, period_end: datetime) -> RenewalRecord | None:
        ...

    async def latest_renewal(self, account_id: str) -> RenewalRecord | None: ...

    async def add_renewal(self, account_id: str, period_end: datetime, invoice_id: str,
                          now: datetime, reminded: bool) -> bool:
        """False when the period already has its renewal invoice."""

    async def replace_renewal_invoice(self, renewal_id: int, invoice_id: str) -> None: ...

    async def second_reminders_due(self, now: datetime, before: timedelta,
                                   limit: int = 200) -> list[RenewalRecord]: ...

    async def mark_second_reminder(self, renewal_id: int, now: datetime) -> bool: ...

    async def record_period(self, invoice_id: str, account_id: str, plan: str,
                            extension: Extension, now: datetime) -> bool:
        """False when this invoice already paid for a period."""

    async def paid_period(self, invoice_id: str) -> Extension | None:
        """What this invoice paid for (`since` is its start), locked for update."""

    async def shorten_period(self, invoice_id: str, periods: int, ends_at: datetime) -> None:
        ...

    async def queue_mail(self, to: str, subject: str, body: str, now: datetime) -> None:
        """Into the durable mail queue, committed with the transaction."""


class DeletionLedger(Protocol):
    """Erasures recorded outside the restorable data."""

    def record(self, account_id: str, at: datetime) -> None: ...

    def entries(self) -> dict[str, datetime]: ...

    def prune(self, before: datetime, dry_run: bool = False) -> int:
        """Drops (dry run: counts) the accounts erased before `before`."""
        ...


@dataclass(frozen=True)
class LegalRequest:
    id: str
    received_at: datetime
    summary: str
    notify_allowed: bool  # may the customers concerned be told now
    hold_lifted_at: datetime | None
    recorded_by: str
    created_at: datetime
    account_ids: tuple[str, ...]
    # When the mail telling the customers concerned was queued; None: not (yet).
    notice_queued_at: datetime | None = None

    @property
    def visible(self) -> bool:
        """Whether the customers concerned see it (export, /account)."""
        return self.notify_allowed or self.hold_lifted_at is not None


class LegalRegister(Protocol):
    async def add(self, request: LegalRequest) -> None: ...

    async def all(self) -> list[LegalRequest]: ...

    async def get(self, request_id: str) -> LegalRequest | None: ...

    async def prune(self, closed_before: datetime, dry_run: bool) -> int:
        """Requests the customers may be told of, recorded, (if held) lifted and mailed
        before `closed_before`: removed (dry run: counted). Held ones, and ones never
        mailed to a live account, stay."""
        ...

    async def for_account(self, account_id: str) -> list[LegalRequest]: ...

    async def notifiable(self, account_id: str) -> list[LegalRequest]: ...

    async def lift_hold(self, request_id: str, now: datetime) -> bool: ...

    async def mark_notice_queued(self, request_id: str, now: datetime,
                                 again: bool = False) -> bool:
        """Claims the request's one notification mail: False when it was claimed already
        (by an earlier call, or a concurrent transaction that committed; unless `again`),
        or when the customers may not be told yet."""

    async def notice_pending(self) -> list[LegalRequest]:
        """Requests the customers may be told of whose mail was never queued."""


class MailOutbox(Protocol):
    async def queue(self, to: str, subject: str, body: str, now: datetime) -> None:
        """Into the durable mail queue, committed with the transaction (the sender is
        woken at commit)."""


class PersonalRecords(Protocol):
    """What the personal-data export reads besides the other repositories."""

    async def sessions(self, account_id: str) -> list[dict[str, Any]]: ...

    async def recovery_codes(self, account_id: str) -> list[dict[str, Any]]: ...

    async def policy_notices(self, account_id: str) -> list[dict[str, Any]]: ...

    async def webhook_events(self, account_id: str) -> list[dict[str, Any]]: ...

    async def login_throttle(self, keys: dict[str, str]) -> list[dict[str, Any]]: ...

    async def account_activity(self, account_id: str) -> dict[str, Any]: ...

    async def paid_periods(self, account_id: str) -> list[dict[str, Any]]: ...

    async def renewals(self, account_id: str) -> list[dict[str, Any]]: ...


class HasEvents(Protocol):
    """An aggregate that records domain events (Account, Invoice)."""

    @property
    def events(self) -> list[DomainEvent]: ...


class UnitOfWork(Protocol):
    # Read-only members, so implementations may narrow the repository types.
    @property
    def accounts(self) -> AccountRepository: ...
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def api_keys(self) -> ApiKeyRepository: ...
    @property
    def invoices(self) -> InvoiceRepository: ...
    @property
    def payments(self) -> PaymentRepository: ...
    @property
    def cursors(self) -> CursorRepository: ...
    @property
    def endpoints(self) -> EndpointRepository: ...
    @property
    def idempotency(self) -> IdempotencyRepository: ...
    @property
    def events(self) -> EventRepository: ...
    @property
    def throttle(self) -> ThrottleRepository: ...
    @property
    def security_log(self) -> SecurityLog: ...
    @property
    def retention(self) -> RetentionRepository: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def staff(self) -> StaffRepository: ...
    @property
    def billing(self) -> BillingRepository: ...
    @property
    def personal(self) -> PersonalRecords: ...
    @property
    def legal(self) -> LegalRegister: ...
    @property
    def mail(self) -> MailOutbox: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, _et: type[BaseException] | None, ev: BaseException | None,
        _tb: TracebackType | None
    ) -> None: ...

    def collect(self, aggregate: HasEvents) -> None:
        """Its events go to the outbox at commit (repositories call this on add/save)."""

    async def commit(self) -> None:
        """Write the collected aggregates' events to the outbox, then commit."""


UnitOfWorkFactory = Callable[[], UnitOfWork]


class RateProvider(Protocol):
    async def rate(self, coin: str, currency: str) -> tuple[Decimal, str]:
        """Fiat per whole coin and a description of its source; raises
        `ServiceUnavailable` when no source answers."""


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


class ChainDirectory(Protocol):
    """Per coin: its follower's address space, feed, addresses and payment URIs; the
    watch-only half of each chain adapter."""

    def coins(self) -> tuple[str, ...]: ...

    def decimals(self, coin: str) -> int: ...

    def address_space(self, coin: str) -> str: ...

    def feed(self, coin: str) -> str:
        """The cursor whose height the coin's confirmations count from."""
        ...

    async def allocate(self, coin: str, indexes: Sequence[int]) -> list[Destination]: ...

    def payment_uri(self, coin: str, destination: Destination, base_units: int) -> str: ...


@dataclass(frozen=True)
class SessionClaims:
    account_id: str
    session_id: str


class SessionTokenCodec(Protocol):
    def issue(self, account_id: str, session_id: str, now: datetime, expires_at: datetime) -> str:
        ...

    def decode(self, token: str, now: datetime) -> SessionClaims:
        """Raises `Unauthorized` for any token that is not ours, valid and current."""
