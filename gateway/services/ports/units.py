"""Units of work, one per use case: each service sees only the repositories it uses.

A unit is one transaction: leaving its `async with` block without `commit()` rolls
everything back. The building blocks below each name one repository; a service's unit is
`Unit` plus the blocks it needs. The account repository comes in parts
(`ports/accounts.py`): a unit's `accounts` is typed with only the parts its service calls.
`UnitOfWork` is all of it: what the SQL unit provides, so it satisfies every narrower unit
structurally (`gateway/adapters/db/unit_of_work.py` lets mypy check it); the in-memory
unit of the tests provides the sign-in parts and claims only the units that need no more
(`tests/support/memory.py` lets mypy check that)."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self

from gateway.services.ports.accounts import (
    AccountRepository,
    AccountStore,
    ApiKeyRepository,
    FactorAccounts,
    NoticeAccounts,
    PrivacyAccounts,
    RetentionAccounts,
    SecurityLog,
    SessionRepository,
    SignInAccounts,
    ThrottleRepository,
)
from gateway.services.ports.billing import BillingRepository
from gateway.services.ports.cash import CashTokenRepository
from gateway.services.ports.common import HasEvents
from gateway.services.ports.credit import CreditLedger
from gateway.services.ports.finance import Ledger
from gateway.services.ports.invoices import (
    CursorRepository,
    IdempotencyRepository,
    InvoiceRepository,
    PaymentRepository,
)
from gateway.services.ports.privacy import (
    AuditLog,
    LegalRegister,
    MailOutbox,
    PersonalRecords,
    RetentionRepository,
)
from gateway.services.ports.refund_watch import RefundWatchRepository
from gateway.services.ports.refunds import RefundRepository
from gateway.services.ports.staff import StaffRepository
from gateway.services.ports.vouchers import VoucherRepository
from gateway.services.ports.webhooks import EndpointRepository, EventRepository


class Unit(Protocol):
    """The transaction itself, whatever repositories come with it."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, _et: type[BaseException] | None, ev: BaseException | None,
        _tb: TracebackType | None
    ) -> None: ...

    def collect(self, aggregate: HasEvents) -> None:
        """Its events go to the outbox at commit (repositories call this on add/save)."""

    async def commit(self) -> None:
        """Write the collected aggregates' events to the outbox, then commit."""


# One repository each. Read-only members, so implementations may narrow the types.
class WithAccounts(Protocol):
    """Every part of the account repository (`UnitOfWork`)."""

    @property
    def accounts(self) -> AccountRepository: ...


# The account repository as a service sees it: only the parts it uses
# (`ports/accounts.py`).
class WithAccountStore(Protocol):
    @property
    def accounts(self) -> AccountStore: ...


class WithSecondFactor(Protocol):
    @property
    def accounts(self) -> FactorAccounts: ...


class WithSignInAccounts(Protocol):
    @property
    def accounts(self) -> SignInAccounts: ...


class WithNoticeAccounts(Protocol):
    @property
    def accounts(self) -> NoticeAccounts: ...


class WithPrivacyAccounts(Protocol):
    @property
    def accounts(self) -> PrivacyAccounts: ...


class WithRetentionAccounts(Protocol):
    @property
    def accounts(self) -> RetentionAccounts: ...


class WithSessions(Protocol):
    @property
    def sessions(self) -> SessionRepository: ...


class WithApiKeys(Protocol):
    @property
    def api_keys(self) -> ApiKeyRepository: ...


class WithInvoices(Protocol):
    @property
    def invoices(self) -> InvoiceRepository: ...


class WithPayments(Protocol):
    @property
    def payments(self) -> PaymentRepository: ...


class WithRefundWatches(Protocol):
    @property
    def refund_watches(self) -> RefundWatchRepository: ...


class WithCursors(Protocol):
    @property
    def cursors(self) -> CursorRepository: ...


class WithEndpoints(Protocol):
    @property
    def endpoints(self) -> EndpointRepository: ...


class WithIdempotency(Protocol):
    @property
    def idempotency(self) -> IdempotencyRepository: ...


class WithEvents(Protocol):
    @property
    def events(self) -> EventRepository: ...


class WithThrottle(Protocol):
    @property
    def throttle(self) -> ThrottleRepository: ...


class WithSecurityLog(Protocol):
    @property
    def security_log(self) -> SecurityLog: ...


class WithRetention(Protocol):
    @property
    def retention(self) -> RetentionRepository: ...


class WithAudit(Protocol):
    @property
    def audit(self) -> AuditLog: ...


class WithLedger(Protocol):
    @property
    def ledger(self) -> Ledger: ...


class WithStaff(Protocol):
    @property
    def staff(self) -> StaffRepository: ...


class WithBilling(Protocol):
    @property
    def billing(self) -> BillingRepository: ...


class WithPersonal(Protocol):
    @property
    def personal(self) -> PersonalRecords: ...


class WithLegal(Protocol):
    @property
    def legal(self) -> LegalRegister: ...


class WithMail(Protocol):
    @property
    def mail(self) -> MailOutbox: ...


class WithCredit(Protocol):
    @property
    def credit(self) -> CreditLedger: ...


class WithRefunds(Protocol):
    @property
    def refunds(self) -> RefundRepository: ...


class WithVouchers(Protocol):
    @property
    def vouchers(self) -> VoucherRepository: ...


class WithCashTokens(Protocol):
    @property
    def cash_tokens(self) -> CashTokenRepository: ...


# --- one unit per use case -----------------------------------------------------------
class ThrottledUnit(Unit, WithAccountStore, WithThrottle, Protocol):
    """Password and sign-in attempts (`services/attempts.py`)."""


class TwoFactorUnit(Unit, WithSecondFactor, WithSessions, WithSecurityLog, WithThrottle,
                    Protocol):
    """Two-factor authentication (`services/two_factor.py`)."""


class AccountsUnit(Unit, WithSignInAccounts, WithSessions, WithSecurityLog, WithThrottle,
                   Protocol):
    """Sign-up, sessions and profiles (`services/accounts.py`)."""


class RecoveryUnit(Unit, WithSignInAccounts, WithSessions, WithSecurityLog, WithThrottle,
                   Protocol):
    """Password resets (`services/recovery.py`)."""


class EmailChangeUnit(Unit, WithSignInAccounts, WithSessions, WithSecurityLog, WithThrottle,
                      Protocol):
    """Changing an account's email (`services/email_change.py`)."""


class PolicyNoticesUnit(Unit, WithNoticeAccounts, Protocol):
    """Policy-change notices (`services/policy_notices.py`)."""


class ApiKeysUnit(Unit, WithApiKeys, Protocol):
    """API keys (`services/api_keys.py`)."""


class InvoicesUnit(Unit, WithAccountStore, WithInvoices, WithCursors, WithIdempotency,
                   WithCredit, Protocol):
    """Creating and reading invoices (`services/invoices.py`)."""


class PrepaidUnit(Unit, WithAccountStore, WithBilling, WithCredit, Protocol):
    """What a settled (or reverted) plan invoice does to its account's paid time
    (`services/billing.py` `PrepaidTime`), inside the transaction that saw it."""


class BillingUnit(InvoicesUnit, WithPayments, WithBilling, WithCredit, Protocol):
    """Plans, renewals and paid periods (`services/billing.py`); renewals create
    invoices through the invoice service in the same transaction."""


class ChainEventsUnit(Unit, WithAccountStore, WithInvoices, WithPayments, WithCursors,
                      WithBilling, WithCredit, WithRefundWatches,
                      WithRefunds, Protocol):
    """Blocks and mempool batches into payments and invoice states
    (`services/chain_events.py`); a settled plan invoice extends its account; payments
    to a watched refund address move the refund on."""


class CreditUnit(Unit, WithAccountStore, WithInvoices, WithPayments, WithCursors,
                 WithBilling, WithCredit, Protocol):
    """The account credit ledger (`services/credit.py`): crediting payments, giving back
    spends, expiry, reads."""


class WalletUnit(Unit, WithInvoices, Protocol):
    """Address-space usage (`services/wallet.py`)."""


class FinanceUnit(Unit, WithLedger, WithCursors, WithCredit, WithRefunds, WithVouchers,
                  Protocol):
    """The payments export (`services/finance.py`)."""


class ReconcileUnit(Unit, WithLedger, WithRefundWatches, WithVouchers, Protocol):
    """Reconciling payments, and refunds paid, against the chain
    (`services/reconcile.py`)."""


class EndpointsUnit(Unit, WithEndpoints, Protocol):
    """Webhook endpoints (`services/webhook_endpoints.py`)."""


class EventsUnit(Unit, WithEvents, Protocol):
    """Webhook events and redelivery (`services/webhook_events.py`)."""


class LegalUnit(Unit, WithAccountStore, WithAudit, WithLegal, WithMail, Protocol):
    """The legal-request register (`services/legal.py`)."""


class PrivacyUnit(Unit, WithPrivacyAccounts, WithSessions, WithSecurityLog, WithThrottle,
                  WithInvoices, WithAudit, WithLegal, WithPersonal, WithCredit, WithRefunds,
                  WithCashTokens, Protocol):
    """Export, correction, deletion and the access audit (`services/privacy.py`)."""


class RetentionUnit(Unit, WithRetentionAccounts, WithSessions, WithSecurityLog, WithAudit,
                    WithLegal, WithRetention, WithRefunds, WithCashTokens, Protocol):
    """Scheduled retention and erasure (`services/retention.py`)."""


class StaffUnit(Unit, WithStaff, WithThrottle, WithInvoices, WithLedger, WithEvents,
                WithCredit, Protocol):
    """The staff console (`services/staff.py`)."""


class RefundsUnit(Unit, WithAccountStore, WithRefunds, WithCredit, WithMail,
                  WithRefundWatches, Protocol):
    """Refunds (`services/refunds.py`): the refund, the account row it locks, the credit
    it holds and returns, the mail it queues, the watch its approval starts."""


class VouchersUnit(BillingUnit, WithThrottle, WithVouchers, Protocol):
    """Vouchers (`services/vouchers.py`): batches and codes; redeeming locks the account,
    credits it and may buy plan periods from that credit, throttled."""


class VoucherStoreUnit(Unit, WithVouchers, Protocol):
    """The voucher repository alone (the in-memory unit claims it)."""


class CashUnit(Unit, WithAccountStore, WithCredit, WithCashTokens, Protocol):
    """Cash by mail (`services/cash.py`): the tokens, the account row an envelope locks,
    the credit it writes."""


class UnitOfWork(Unit, WithAccounts, WithSessions, WithApiKeys, WithInvoices, WithPayments,
                 WithCursors, WithEndpoints, WithIdempotency, WithEvents, WithThrottle,
                 WithSecurityLog, WithRetention, WithAudit, WithLedger, WithStaff,
                 WithBilling, WithPersonal, WithLegal, WithMail, WithCredit, WithRefunds,
                 WithRefundWatches, WithVouchers, WithCashTokens, Protocol):
    """Every repository: what the SQL unit of work provides."""


UnitOfWorkFactory = Callable[[], UnitOfWork]
