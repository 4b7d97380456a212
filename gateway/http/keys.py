"""Typed application state: one key per area, each holding what that area's handlers
use (the services and the request-edge policies), never the whole gateway."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.http.client_ip import Network, client_ip
from gateway.http.csrf import Csrf
from gateway.http.ratelimit import SlidingWindow
from gateway.http.streams import StreamSlots
from gateway.http.vocabulary import Vocabulary
from gateway.i18n import ENGLISH, Catalogs
from gateway.services.accounts import AccountService
from gateway.services.api_keys import ApiKeyService
from gateway.services.billing import BillingService
from gateway.services.cash import CashService
from gateway.services.changes import ChangeHub
from gateway.services.credit import CreditService
from gateway.services.credit_spending import PlanPurchases
from gateway.services.email_change import EmailChangeService
from gateway.services.finance import FinanceService
from gateway.services.invoices import InvoiceService
from gateway.services.privacy import PrivacyService
from gateway.services.recovery import RecoveryService
from gateway.services.refunds import RefundService
from gateway.services.two_factor import TwoFactorService
from gateway.services.vouchers import VoucherService
from gateway.services.webhook_endpoints import WebhookEndpointService
from gateway.services.webhook_events import WebhookEventService


@dataclass(frozen=True, kw_only=True)
class AccountsArea:
    """Sign-up, sessions, second factor, recovery, email changes; API keys."""

    accounts: AccountService
    two_factor: TwoFactorService
    recovery: RecoveryService
    api_keys: ApiKeyService
    email_changes: EmailChangeService | None = None
    login_limit: SlidingWindow | None = None
    signup_limit: SlidingWindow | None = None
    datacenters: tuple[str, ...] = ()
    currencies: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class BillingArea:
    """Invoices (API, portal, checkout and its streams), prepaid time, payments."""

    invoices: InvoiceService
    finance: FinanceService
    billing: BillingService | None = None
    invoice_limit: SlidingWindow | None = None  # portal invoices per client address
    stream_slots: StreamSlots | None = None
    changes: ChangeHub | None = None  # None: streams look again every POLL_SECONDS
    credit: CreditService | None = None  # account credit (docs/credit.md)
    purchases: PlanPurchases | None = None  # buying a plan: credit first
    refunds: RefundService | None = None  # credit asked back (docs/refunds.md)
    vouchers: VoucherService | None = None  # codes redeemed (docs/vouchers.md)
    cash: CashService | None = None  # cash by mail (docs/cash.md)


@dataclass(frozen=True, kw_only=True)
class WebhooksArea:
    endpoints: WebhookEndpointService
    events: WebhookEventService


@dataclass(frozen=True, kw_only=True)
class PrivacyArea:
    privacy: PrivacyService


@dataclass(frozen=True, kw_only=True)
class OpsArea:
    """/readyz, /metrics, the request timings, the OpenAPI document's enums."""

    readiness: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
    metrics: Callable[[], Awaitable[tuple[bytes, str]]] | None = None
    observe: Callable[[str, str, int, float], None] | None = None
    vocabulary: Vocabulary = field(default_factory=Vocabulary)


@dataclass(frozen=True, kw_only=True)
class EdgeArea:
    """What every handler of a request's edge knows: which proxies to trust for the
    client address, and the CSRF key."""

    trusted_proxies: tuple[Network, ...] = ()
    csrf_key: bytes = b""
    # The languages' compiled catalogs (read once when the gateway is built); without
    # them, every page and answer is in English.
    catalogs: Catalogs = ENGLISH


@dataclass(frozen=True, kw_only=True)
class Areas:
    """What the application factory is handed; each becomes its own key."""

    accounts: AccountsArea
    billing: BillingArea
    webhooks: WebhooksArea
    privacy: PrivacyArea
    ops: OpsArea
    edge: EdgeArea = field(default_factory=EdgeArea)


ACCOUNTS = web.AppKey("accounts", AccountsArea)
BILLING = web.AppKey("billing", BillingArea)
WEBHOOKS = web.AppKey("webhooks", WebhooksArea)
PRIVACY = web.AppKey("privacy", PrivacyArea)
OPS = web.AppKey("ops", OpsArea)
EDGE = web.AppKey("edge", EdgeArea)
CSRF = web.AppKey("csrf", Csrf)
PREFIX = web.AppKey("path_prefix", str)


def client_address(request: web.Request) -> str:
    """The client's address, as the proxies the edge trusts report it."""
    return client_ip(request, request.app[EDGE].trusted_proxies)
