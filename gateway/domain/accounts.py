import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.domain import events as ev
from gateway.domain.billing import BillingState, Extension
from gateway.domain.credit import CreditEntry, CreditKind, signed_fiat
from gateway.domain.errors import N_, InvalidInput
from gateway.domain.states import AccountState

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
# Deliberately permissive: one @, a dot in the domain, no spaces. Deliverability is the
# customer's business; we only refuse what cannot be an address.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def normalize_email(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("email", N_("is required"))
    email = raw.strip()
    if len(raw) > 254 or not _EMAIL.match(email):
        raise InvalidInput("email", N_("is not a valid email address"))
    local, domain = email.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def email_lookup_form(email: str) -> str:
    """The form the blind index is computed over: case-insensitive, as customers expect."""
    return email.lower()


def check_password(raw: object, field_name: str = "password",
                   common: Callable[[str], bool] | None = None) -> str:
    """`common`: whether a password is among the most common ones (an adapter's list)."""
    if not isinstance(raw, str) or not raw:
        raise InvalidInput(field_name, N_("is required"))
    if len(raw) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(field_name, N_("must be at least %(n)s characters"),
                           n=MIN_PASSWORD_LENGTH)
    if len(raw) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(field_name, N_("must be at most %(n)s characters"),
                           n=MAX_PASSWORD_LENGTH)
    if common is not None and common(raw):
        raise InvalidInput(field_name, N_("is one of the most common passwords, the first "
                                          "ones an attacker tries; choose another"))
    return raw


def check_choice(value: str | None, allowed: tuple[str, ...], field_name: str) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        raise InvalidInput(field_name, N_("must be one of %(choices)s"),
                           choices=", ".join(allowed))
    return value


@dataclass
class Account:
    id: str
    created_at: datetime
    datacenter: str | None = None
    currency: str | None = None
    activated_at: datetime | None = None
    policy_version: str | None = None  # the privacy policy version the customer accepted
    deletion_due_at: datetime | None = None
    deleted_at: datetime | None = None
    # Prepaid time (gateway.domain.billing): the plan renewed, the coin last paid with,
    # the end of the time paid for, and the state the periodic task last announced.
    plan: str | None = None
    renewal_coin: str | None = None
    paid_until: datetime | None = None
    paid_since: datetime | None = None  # start of the unbroken run of paid time
    billing_state: BillingState | None = None
    renewal_reminders: bool = True
    language: str | None = None  # the one the customer last chose: their mails use it
    events: list[ev.DomainEvent] = field(default_factory=list)

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def state(self) -> AccountState:
        if self.deleted:
            return AccountState.DELETED
        if self.deletion_due_at is not None:
            return AccountState.DELETION_SCHEDULED
        if self.activated_at is not None:
            return AccountState.ACTIVE
        return AccountState.PENDING_ACTIVATION

    def schedule_deletion(self, now: datetime, grace: timedelta) -> datetime:
        """Asking again keeps the first date: a repeated request must not postpone it."""
        if self.deleted:
            raise InvalidInput("account", N_("is already deleted"))
        if self.deletion_due_at is None:
            self.deletion_due_at = now + grace
            self.events.append(ev.AccountDeletionScheduled(self.id, self.deletion_due_at))
        return self.deletion_due_at

    def cancel_deletion(self) -> bool:
        if self.deleted or self.deletion_due_at is None:
            return False
        self.deletion_due_at = None
        self.events.append(ev.AccountDeletionCancelled(self.id))
        return True

    def erase(self, now: datetime) -> None:
        """The personal data goes (the repository does that); the id stays as a tombstone
        so billing records keep their reference."""
        if self.deleted:
            return
        self.deleted_at = now
        self.deletion_due_at = None
        self.datacenter = None
        self.currency = None
        # Not billing records either: when the person signed up and first paid, the policy
        # they accepted, their renewal settings and the paid time derived from the
        # invoices (each invoice and what it bought, `paid_periods`, stay). The signup
        # time cannot be empty: it becomes the erasure time.
        self.created_at = now
        self.activated_at = None
        self.policy_version = None
        self.plan = None
        self.renewal_coin = None
        self.paid_until = None
        self.paid_since = None
        self.billing_state = None
        self.renewal_reminders = True  # the customer's choice: back to the default
        self.language = None
        self.events.append(ev.AccountDeleted(self.id))

    def accept_policy(self, version: str) -> None:
        self.policy_version = version

    def created(self) -> None:
        self.events.append(ev.AccountCreated(self.id))

    def activate(self, invoice_id: str, metadata: dict[str, object], now: datetime) -> None:
        """The first settled invoice activates the account; later ones do not re-announce.
        A deleted account is never activated (a late payment to an old invoice)."""
        if self.activated_at is not None or self.deleted:
            return
        self.activated_at = now
        self.events.append(ev.AccountActivated(self.id, invoice_id, self.datacenter,
                                               dict(metadata)))

    # -- prepaid time ------------------------------------------------------------------
    def credit(self, invoice_id: str | None, plan: str, coin: str, extension: Extension,
               metadata: dict[str, object], now: datetime, via: str = "invoice") -> bool:
        """A settled plan invoice bought `extension`. The first one activates the account
        (`account.activated`); one after a suspension activates it again; any other
        renews it (`account.renewed`). Each carries the new `paid_until`. A deleted
        account gets nothing (a late payment to an old invoice). True when credited."""
        if self.deleted:
            return False
        before = self.billing_state
        self.plan = plan
        self.renewal_coin = coin
        self.paid_until = extension.ends_at
        self.paid_since = extension.since
        self.billing_state = BillingState.ACTIVE
        if self.activated_at is None or before is BillingState.SUSPENDED:
            self.activated_at = self.activated_at or now
            self.events.append(ev.AccountActivated(
                self.id, invoice_id, self.datacenter, dict(metadata), plan=plan,
                paid_until=extension.ends_at, reactivated=before is BillingState.SUSPENDED,
                via=via))
        else:
            self.events.append(ev.AccountRenewed(
                self.id, plan=plan, paid_until=extension.ends_at, invoice_id=invoice_id,
                periods=extension.periods, period_start=extension.starts_at, via=via))
        return True

    def credited(self, entry: CreditEntry, balance: int) -> None:
        """Its credit grew by `entry` (`account.credited`); `balance` after it."""
        c = entry.conversion
        self.events.append(ev.AccountCredited(
            self.id, kind=entry.kind.value,
            amount=signed_fiat(entry.amount, entry.currency),
            currency=entry.currency, balance=signed_fiat(balance, entry.currency),
            invoice_id=entry.invoice_id, txid=c.txid if c else None,
            via="voucher" if entry.kind is CreditKind.VOUCHER else None))

    def advance(self, now: datetime, grace: timedelta) -> list[BillingState]:
        """Move the announced state on as far as the time says: active -> grace at
        `paid_until`, grace -> suspended at `paid_until + grace`. Each step is announced
        once (a clock that jumped past both announces both, in order). Returns the new
        states entered."""
        entered: list[BillingState] = []
        if self.paid_until is None or self.deleted:
            return entered
        if self.billing_state is BillingState.ACTIVE and now >= self.paid_until:
            self.billing_state = BillingState.GRACE
            entered.append(BillingState.GRACE)
            self.events.append(ev.AccountGrace(self.id, self.plan, self.paid_until,
                                               suspends_at=self.paid_until + grace))
        if self.billing_state is BillingState.GRACE and now >= self.paid_until + grace:
            self.billing_state = BillingState.SUSPENDED
            entered.append(BillingState.SUSPENDED)
            self.events.append(ev.AccountSuspended(self.id, self.plan, self.paid_until))
        return entered

    def take_back(self, invoice_id: str, periods: int, paid_until: datetime,
                  now: datetime) -> None:
        """A payment of a settled plan invoice was reverted: the `periods` it no longer
        pays for are taken back and `paid_until` moves back to `paid_until`
        (`account.time_revoked`). Time bought with money that never arrived gets no
        grace: an account whose paid time is over by then is suspended at once."""
        if self.deleted:
            return
        self.paid_until = paid_until
        if self.paid_since is not None and self.paid_since > paid_until:
            self.paid_since = paid_until
        suspend = now >= paid_until and self.billing_state is not BillingState.SUSPENDED
        if suspend:
            self.billing_state = BillingState.SUSPENDED
        self.events.append(ev.AccountTimeRevoked(
            self.id, self.plan, paid_until, invoice_id=invoice_id, periods=periods,
            billing_state=self.billing_state))
        if suspend:
            self.events.append(ev.AccountSuspended(self.id, self.plan, paid_until))

    def renewal_due(self, now: datetime, lead: timedelta) -> bool:
        """Whether the renewal invoice for the current period should exist by now: not
        for an account being deleted, nor one suspended (it buys from /account)."""
        return (self.paid_until is not None and self.plan is not None
                and self.renewal_coin is not None and not self.deleted
                and self.deletion_due_at is None
                and self.billing_state in (BillingState.ACTIVE, BillingState.GRACE)
                and now >= self.paid_until - lead)

    def expiring(self, invoice_id: str, amount: dict[str, str]) -> None:
        """The renewal invoice for the current period was created."""
        self.events.append(ev.AccountExpiring(
            self.id, self.plan, self.paid_until, invoice_id=invoice_id,
            price=ev.Price(amount["amount"], amount["currency"]), coin=self.renewal_coin))

    def choose_renewal(self, plan: str | None, coin: str | None,
                       reminders: bool | None) -> None:
        if plan is not None:
            self.plan = plan
        if coin is not None:
            self.renewal_coin = coin
        if reminders is not None:
            self.renewal_reminders = reminders
