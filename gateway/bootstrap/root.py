"""`Gateway`: the areas `build` wired, and `build` itself: the composition root."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.chain_directory import ChainDirectory
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import FieldCipher
from gateway.adapters.passwords import Argon2Passwords
from gateway.bootstrap.accounts import AccountsArea, build_accounts
from gateway.bootstrap.billing import BillingArea, build_billing
from gateway.bootstrap.cash import build_cash
from gateway.bootstrap.chains import ChainsArea, build_chains_area
from gateway.bootstrap.core import (
    Clock,
    Core,
    Credentials,
    Keys,
    Overrides,
    build_core,
    build_credentials,
    utcnow,
)
from gateway.bootstrap.mail import MailArea, build_mail
from gateway.bootstrap.ops import Monitoring, OpsArea, Readiness
from gateway.bootstrap.privacy import PrivacyArea, build_privacy
from gateway.bootstrap.refunds import build_refunds
from gateway.bootstrap.resources import Resource
from gateway.bootstrap.staff import StaffArea, build_staff
from gateway.bootstrap.webhooks import WebhooksArea, build_webhooks
from gateway.config import Settings
from gateway.i18n import Catalogs
from gateway.services.accounts import AccountService
from gateway.services.api_keys import ApiKeyService
from gateway.services.billing import BillingService
from gateway.services.cash import CashService
from gateway.services.chain_events import PaymentTracker
from gateway.services.changes import ChangeHub
from gateway.services.credit import CreditService
from gateway.services.credit_spending import PlanPurchases
from gateway.services.email_change import EmailChangeService
from gateway.services.finance import FinanceService
from gateway.services.invoices import InvoiceService
from gateway.services.legal import LegalRegisterService
from gateway.services.policy_notices import PolicyNoticeService
from gateway.services.ports import UnitOfWork
from gateway.services.privacy import PrivacyService
from gateway.services.reconcile import ReconcileService
from gateway.services.recovery import RecoveryService
from gateway.services.refunds import RefundService
from gateway.services.retention import RetentionService
from gateway.services.staff import StaffService
from gateway.services.two_factor import TwoFactorService
from gateway.services.vouchers import VoucherService
from gateway.services.wallet import WalletService
from gateway.services.webhook_endpoints import WebhookEndpointService
from gateway.services.webhook_events import WebhookEventService


@dataclass(frozen=True, kw_only=True)
class Services:
    """Every use case by name: the view entry points (CLI commands, tests) take them
    from. Assembled from the areas; HTTP handlers never see it."""

    accounts: AccountService
    two_factor: TwoFactorService
    recovery: RecoveryService
    email_changes: EmailChangeService
    api_keys: ApiKeyService
    invoices: InvoiceService
    billing: BillingService
    endpoints: WebhookEndpointService
    events: WebhookEventService
    tracker: PaymentTracker
    wallet: WalletService
    retention: RetentionService
    legal: LegalRegisterService
    privacy: PrivacyService
    finance: FinanceService
    notices: PolicyNoticeService
    reconcile: ReconcileService
    staff: StaffService
    credit: CreditService
    purchases: PlanPurchases
    refunds: RefundService
    vouchers: VoucherService
    cash: CashService


@dataclass(frozen=True, kw_only=True)
class Gateway:
    """Every area, built once. Entry points (the server, the CLI, tests) take what they
    need from here; the HTTP handlers see only their own area (`build_app`)."""

    core: Core
    credentials: Credentials
    mail: MailArea
    chain_area: ChainsArea
    accounts: AccountsArea
    billing: BillingArea
    webhooks: WebhooksArea
    privacy: PrivacyArea
    staff: StaffArea
    ops: OpsArea
    refunds: RefundService
    cash: CashService

    # The shared base, as entry points read it.
    @property
    def settings(self) -> Settings:
        return self.core.settings

    @property
    def clock(self) -> Clock:
        return self.core.clock

    @property
    def keys(self) -> Keys:
        return self.core.keys

    @property
    def engine(self) -> AsyncEngine:
        return self.core.engine

    @property
    def cipher(self) -> FieldCipher:
        return self.core.cipher

    @property
    def changes(self) -> ChangeHub:
        return self.core.changes

    @property
    def catalogs(self) -> Catalogs:
        return self.core.catalogs

    @property
    def sql_uow(self) -> Callable[[], SqlUnitOfWork]:
        return self.core.sql_uow

    @property
    def chains(self) -> ChainDirectory:
        return self.chain_area.directory

    @property
    def passwords(self) -> Argon2Passwords:
        return self.credentials.passwords

    def uow(self) -> UnitOfWork:
        return self.core.make_uow()

    @cached_property
    def services(self) -> Services:
        """Every use case by name, for the CLI and tests (never handed to HTTP)."""
        a, b, p = self.accounts, self.billing, self.privacy
        return Services(
            accounts=a.accounts, two_factor=a.two_factor, recovery=a.recovery,
            email_changes=a.email_changes, api_keys=a.api_keys, invoices=b.invoices,
            billing=b.billing, endpoints=self.webhooks.endpoints,
            events=self.webhooks.events, tracker=b.tracker, wallet=self.chain_area.wallet,
            retention=p.retention, legal=p.legal, privacy=p.privacy, finance=b.finance,
            notices=p.notices, reconcile=b.reconcile, staff=self.staff.staff,
            credit=b.credit, purchases=b.purchases, refunds=self.refunds,
            vouchers=b.vouchers, cash=self.cash)

    async def check_schema(self) -> None:
        await self.ops.readiness.check_schema()

    @cached_property
    def resources(self) -> tuple[Resource, ...]:
        """What must be closed, in the order it was opened."""
        return (*self.core.resources(), *self.credentials.resources(),
                *self.chain_area.resources(), *self.webhooks.resources(),
                *self.billing.resources())

    async def aclose(self) -> None:
        """For entry points that run no app (the CLI); the app closes each resource in
        a cleanup context of its own."""
        for resource in reversed(self.resources):
            await resource.aclose()


def build_ops(core: Core, chains: ChainsArea) -> OpsArea:
    readiness = Readiness(engine=core.engine, database_url=core.settings.database.url,
                          chains=chains.directory)
    return OpsArea(readiness=readiness, monitoring=Monitoring(
        metrics=core.metrics, engine=core.engine, clock=core.clock, readiness=readiness))


def build(settings: Settings, clock: Clock = utcnow,
          overrides: Overrides | None = None) -> Gateway:
    """Wire every area. Performs no I/O: connections open on first use."""
    overrides = overrides or Overrides()
    core = build_core(settings, overrides.clock or clock, overrides)
    credentials = build_credentials(settings, core.clock, overrides.hash_cost)
    mail = build_mail(core)
    chains = build_chains_area(core, overrides)
    accounts = build_accounts(core, credentials, mail)
    billing = build_billing(core, chains, mail)
    return Gateway(
        core=core, credentials=credentials, mail=mail, chain_area=chains,
        accounts=accounts, billing=billing,
        refunds=build_refunds(core, credentials, accounts, chains, billing),
        cash=build_cash(core),
        webhooks=build_webhooks(core), privacy=build_privacy(core, credentials, accounts, mail),
        staff=build_staff(core, credentials), ops=build_ops(core, chains))
