"""What the console is handed: the same services the API and the CLI use."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.http.client_ip import Network
from gateway.http.csrf import Csrf
from gateway.http.ratelimit import SlidingWindow
from gateway.promise_checks import Check
from gateway.services.accounts import AccountService
from gateway.services.api_keys import ApiKeyService
from gateway.services.finance import FinanceService
from gateway.services.invoices import InvoiceService
from gateway.services.ports import StaffSession
from gateway.services.privacy import PrivacyService
from gateway.services.reconcile import ReconcileService, Report
from gateway.services.staff import StaffService
from gateway.services.webhook_endpoints import WebhookEndpointService
from gateway.services.webhook_events import WebhookEventService

PREFIX = "/staff"
COOKIE = "__Secure-staff"  # its own name and path: never the customers' session cookie


@dataclass(frozen=True)
class Console:
    staff: StaffService
    accounts: AccountService
    api_keys: ApiKeyService
    invoices: InvoiceService
    endpoints: WebhookEndpointService
    events: WebhookEventService
    privacy: PrivacyService
    finance: FinanceService
    reconcile: ReconcileService
    chain_status: Callable[[], Awaitable[dict[str, dict[str, Any]]]]
    # Pending deliveries, and the endpoints failing (disabled, or deliveries failing).
    outbox: Callable[[], Awaitable[tuple[int, tuple[str, ...]]]]
    # Deletions and backups: is each promise kept right now (gateway/promise_checks.py).
    promises: Callable[[], Awaitable[list[Check]]]
    coins: tuple[str, ...] = ()
    trusted_proxies: tuple[Network, ...] = ()
    login_limit: SlidingWindow | None = None
    csrf_key: bytes = b""


@dataclass
class ReconcileRun:
    """The last reconciliation started from the console; it runs in the background."""

    started_by: str
    params: str
    total: int = 0
    done: int = 0
    report: Report | None = None
    error: str | None = None

    def add_total(self, n: int) -> None:
        self.total += n

    def advance(self, n: int = 1) -> None:
        self.done += n


@dataclass
class RunHolder:
    run: ReconcileRun | None = None
    tasks: set[Any] = field(default_factory=set)


CONSOLE = web.AppKey("console", Console)
STAFF_CSRF = web.AppKey("staff_csrf", Csrf)
# The member whose session a console request carries (set once it is checked).
STAFF_SESSION = web.RequestKey("staff_session", StaffSession)
RUNS = web.AppKey("reconcile_runs", RunHolder)
