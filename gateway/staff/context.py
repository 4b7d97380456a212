"""What the console is handed, area by area (the same services the API and the CLI
use): each page reads the key of its own area, never the whole gateway."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.http.client_ip import Network
from gateway.http.csrf import Csrf
from gateway.http.ratelimit import SlidingWindow
from gateway.promise_checks import Check
from gateway.services.accounts import AccountService
from gateway.services.api_keys import ApiKeyService
from gateway.services.cash import CashService
from gateway.services.finance import FinanceService
from gateway.services.invoices import InvoiceService
from gateway.services.ports import StaffSession
from gateway.services.privacy import PrivacyService
from gateway.services.reconcile import ReconcileService, Report
from gateway.services.refunds import ProvenRefunds, RefundService
from gateway.services.staff import StaffService
from gateway.services.vouchers import VoucherService
from gateway.services.webhook_endpoints import WebhookEndpointService
from gateway.services.webhook_events import WebhookEventService

PREFIX = "/staff"
COOKIE = "__Secure-staff"  # its own name and path: never the customers' session cookie


@dataclass(frozen=True, kw_only=True)
class MembersArea:
    """The console's own accounts: log-in, enrolment, sessions, and the staff log every
    page writes to (who did what)."""

    staff: StaffService


@dataclass(frozen=True, kw_only=True)
class LooksArea:
    """The customer's access audit a look at their data writes to (gateway/staff/looks.py),
    and the audited read of their profile."""

    privacy: PrivacyService


@dataclass(frozen=True, kw_only=True)
class FinanceArea:
    """The payments ledger and its CSV, reconciliation."""

    finance: FinanceService
    reconcile: ReconcileService
    coins: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RefundsArea:
    """The refunds queue: approve, refuse; a Monero refund's txid and tx key (finance)."""

    refunds: RefundService
    proven: ProvenRefunds | None = None


@dataclass(frozen=True, kw_only=True)
class VouchersArea:
    """Voucher batches: make (codes shown once), list, revoke (admin)."""

    vouchers: VoucherService
    plans: tuple[str, ...] = ()  # plans a voucher may buy (those with a period)
    clock: Callable[[], datetime]


@dataclass(frozen=True, kw_only=True)
class CashArea:
    """Cash by mail: recording an envelope against its token (finance)."""

    cash: CashService
    currencies: tuple[str, ...] = ("EUR", "USD")  # [accounts] currencies
    # Refused token lookups per member ([cash] refused_lookups_per_hour): guessing
    # tokens through the console is slow as well as hopeless (docs/cash.md).
    refusals: SlidingWindow | None = None


@dataclass(frozen=True, kw_only=True)
class SupportArea:
    """An invoice and its webhook events (redelivered on request), an account."""

    accounts: AccountService
    invoices: InvoiceService
    events: WebhookEventService


@dataclass(frozen=True, kw_only=True)
class AdminArea:
    """Webhook endpoints and API keys; chain status, the outbox, the promises kept."""

    endpoints: WebhookEndpointService
    api_keys: ApiKeyService
    chain_status: Callable[[], Awaitable[dict[str, dict[str, Any]]]]
    # Pending deliveries, and the endpoints failing (disabled, or deliveries failing).
    outbox: Callable[[], Awaitable[tuple[int, tuple[str, ...]]]]
    # Deletions and backups: is each promise kept right now (gateway/promise_checks.py).
    promises: Callable[[], Awaitable[list[Check]]]


@dataclass(frozen=True, kw_only=True)
class ConsoleEdge:
    """The console's request edge: which proxies to trust for the client address, the
    log-in rate limit, the CSRF key."""

    trusted_proxies: tuple[Network, ...] = ()
    login_limit: SlidingWindow | None = None
    csrf_key: bytes = b""


@dataclass(frozen=True, kw_only=True)
class ConsoleAreas:
    """What `create_staff_app` is handed; each becomes its own key."""

    members: MembersArea
    looks: LooksArea
    finance: FinanceArea
    support: SupportArea
    admin: AdminArea
    edge: ConsoleEdge = field(default_factory=ConsoleEdge)
    refunds: RefundsArea | None = None
    vouchers: VouchersArea | None = None
    cash: CashArea | None = None


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


MEMBERS = web.AppKey("staff_members", MembersArea)
LOOKS = web.AppKey("staff_looks", LooksArea)
FINANCE = web.AppKey("staff_finance", FinanceArea)
SUPPORT = web.AppKey("staff_support", SupportArea)
REFUNDS = web.AppKey("staff_refunds", RefundsArea)
VOUCHERS = web.AppKey("staff_vouchers", VouchersArea)
CASH = web.AppKey("staff_cash", CashArea)
ADMIN = web.AppKey("staff_admin", AdminArea)
EDGE = web.AppKey("staff_edge", ConsoleEdge)
STAFF_CSRF = web.AppKey("staff_csrf", Csrf)
# The member whose session a console request carries (set once it is checked).
STAFF_SESSION = web.RequestKey("staff_session", StaffSession)
RUNS = web.AppKey("reconcile_runs", RunHolder)
