"""Typed application state."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.http.client_ip import Network
from gateway.http.csrf import Csrf
from gateway.http.ratelimit import SlidingWindow
from gateway.http.streams import StreamSlots
from gateway.http.vocabulary import Vocabulary
from gateway.services.accounts import AccountService
from gateway.services.api_keys import ApiKeyService
from gateway.services.billing import BillingService
from gateway.services.changes import ChangeHub
from gateway.services.email_change import EmailChangeService
from gateway.services.finance import FinanceService
from gateway.services.invoices import InvoiceService
from gateway.services.privacy import PrivacyService
from gateway.services.recovery import RecoveryService
from gateway.services.two_factor import TwoFactorService
from gateway.services.webhook_endpoints import WebhookEndpointService
from gateway.services.webhook_events import WebhookEventService


@dataclass(frozen=True)
class HttpServices:
    accounts: AccountService
    two_factor: TwoFactorService
    recovery: RecoveryService
    api_keys: ApiKeyService
    invoices: InvoiceService
    endpoints: WebhookEndpointService
    events: WebhookEventService
    privacy: PrivacyService
    finance: FinanceService
    readiness: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
    metrics: Callable[[], Awaitable[tuple[bytes, str]]] | None = None
    observe: Callable[[str, str, int, float], None] | None = None
    trusted_proxies: tuple[Network, ...] = ()
    login_limit: SlidingWindow | None = None
    signup_limit: SlidingWindow | None = None
    stream_slots: StreamSlots | None = None
    invoice_limit: SlidingWindow | None = None  # portal invoices per client address
    datacenters: tuple[str, ...] = ()
    currencies: tuple[str, ...] = ()
    csrf_key: bytes = b""
    email_changes: EmailChangeService | None = None
    billing: BillingService | None = None
    vocabulary: Vocabulary = field(default_factory=Vocabulary)  # the OpenAPI enums
    changes: ChangeHub | None = None  # None: streams look again every POLL_SECONDS


SERVICES = web.AppKey("services", HttpServices)
CSRF = web.AppKey("csrf", Csrf)
PREFIX = web.AppKey("path_prefix", str)
