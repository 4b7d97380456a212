"""What the use cases need from the outside world, as Protocols, one module per use case
(accounts, invoices, webhooks, privacy, finance, staff, billing; units of work in
`units`). Adapters implement them; tests substitute them (`tests/support/memory.py`).
Everything is re-exported here, so `from gateway.services.ports import X` keeps working."""

from gateway.services.ports.accounts import (
    AccountConsent,
    AccountCredentials,
    AccountDetails,
    AccountLifecycle,
    AccountRepository,
    AccountStore,
    ApiKeyRecord,
    ApiKeyRepository,
    Login,
    NoticeAccounts,
    PasswordHasher,
    PrivacyAccounts,
    Profile,
    RetentionAccounts,
    SecondFactor,
    SecurityEntry,
    SecurityLog,
    SessionClaims,
    SessionRecord,
    SessionRepository,
    SessionTokenCodec,
    SignInAccounts,
    ThrottleRepository,
    TotpCodes,
    TotpState,
)
from gateway.services.ports.billing import BillingRepository, RenewalRecord
from gateway.services.ports.common import Clock, HasEvents
from gateway.services.ports.finance import Ledger, LedgerRow
from gateway.services.ports.invoices import (
    ChainDirectory,
    CursorRepository,
    IdempotencyRecord,
    IdempotencyRepository,
    InvoiceRecord,
    InvoiceRepository,
    NewPayment,
    PaymentRecord,
    PaymentRepository,
    RateProvider,
)
from gateway.services.ports.privacy import (
    AuditEntry,
    AuditLog,
    DeletionLedger,
    LegalRegister,
    LegalRequest,
    MailOutbox,
    PersonalRecords,
    RetentionRepository,
)
from gateway.services.ports.staff import (
    StaffLogEntry,
    StaffMember,
    StaffRepository,
    StaffSession,
)
from gateway.services.ports.units import (
    AccountsUnit,
    ApiKeysUnit,
    BillingUnit,
    ChainEventsUnit,
    EmailChangeUnit,
    EndpointsUnit,
    EventsUnit,
    FinanceUnit,
    InvoicesUnit,
    LegalUnit,
    PolicyNoticesUnit,
    PrepaidUnit,
    PrivacyUnit,
    ReconcileUnit,
    RecoveryUnit,
    RetentionUnit,
    StaffUnit,
    ThrottledUnit,
    TwoFactorUnit,
    Unit,
    UnitOfWork,
    UnitOfWorkFactory,
    WalletUnit,
)
from gateway.services.ports.webhooks import (
    AttemptRecord,
    DeliveryRecord,
    EndpointRecord,
    EndpointRepository,
    EventRecord,
    EventRepository,
)

__all__ = [
    "AccountConsent", "AccountCredentials", "AccountDetails", "AccountLifecycle",
    "AccountRepository", "AccountStore", "AccountsUnit", "ApiKeyRecord", "ApiKeyRepository",
    "ApiKeysUnit", "AttemptRecord", "AuditEntry", "AuditLog", "BillingRepository",
    "BillingUnit", "ChainDirectory", "ChainEventsUnit", "Clock", "CursorRepository",
    "DeletionLedger", "DeliveryRecord", "EmailChangeUnit", "EndpointRecord",
    "EndpointRepository", "EndpointsUnit", "EventRecord", "EventRepository", "EventsUnit",
    "FinanceUnit", "HasEvents", "IdempotencyRecord", "IdempotencyRepository",
    "InvoiceRecord", "InvoiceRepository", "InvoicesUnit", "Ledger", "LedgerRow",
    "LegalRegister", "LegalRequest", "LegalUnit", "Login", "MailOutbox", "NewPayment",
    "NoticeAccounts", "PasswordHasher", "PaymentRecord", "PaymentRepository",
    "PersonalRecords", "PolicyNoticesUnit", "PrepaidUnit", "PrivacyAccounts", "PrivacyUnit",
    "Profile", "RateProvider", "ReconcileUnit", "RecoveryUnit", "RenewalRecord",
    "RetentionAccounts", "RetentionRepository", "RetentionUnit", "SecondFactor",
    "SecurityEntry", "SecurityLog", "SessionClaims", "SessionRecord", "SessionRepository",
    "SessionTokenCodec", "SignInAccounts", "StaffLogEntry", "StaffMember",
    "StaffRepository", "StaffSession", "StaffUnit", "ThrottleRepository", "ThrottledUnit",
    "TotpCodes", "TotpState", "TwoFactorUnit", "Unit", "UnitOfWork", "UnitOfWorkFactory",
    "WalletUnit",
]
