"""Composition root: the only module that builds concrete adapters."""

import asyncio
import base64
import errno
import ipaddress
import logging
import os
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chains.base import (
    Auditable,
    CoinSettings,
    Follower,
    HasAssets,
    NodeProblem,
    Restorable,
    StartupCheckable,
    describe_failure,
)
from gateway import families
from gateway.adapters.backup.files import BackupError, Backups, backup_times, prune
from gateway.adapters.backup.stream import BackupFormatError
from gateway.adapters.chain_directory import ChainDirectory
from gateway.adapters.common_passwords import CommonPasswords
from gateway.adapters.db import notify
from gateway.adapters.db.chain_state import SqlWatchlist
from gateway.adapters.db.engine import (
    current_revision,
    dispose,
    erase_residue,
    head_revision,
    make_engine,
    read_transaction,
)
from gateway.adapters.db.leadership import AdvisoryLockLeadership, LocalLeadership
from gateway.adapters.db.ops import OpsSnapshot, snapshot
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.db.webhooks import SqlDeliveryStore
from gateway.adapters.deletion_ledger import FileDeletionLedger
from gateway.adapters.fields import BlindIndex, FieldCipher
from gateway.adapters.mail import NoMailer, SmtpMailer
from gateway.adapters.mail_queue import MailPolicy, MailSender, QueuedMailer, SqlMailQueue
from gateway.adapters.metrics import CONTENT_TYPE, Metrics
from gateway.adapters.passwords import Argon2Passwords, default_concurrency
from gateway.adapters.rate_sources import DEFAULT_URLS, SOURCES, LazySession
from gateway.adapters.rates import FixedRates
from gateway.adapters.tokens import PurposeTokens, SessionTokens, hash_api_key, new_api_key
from gateway.adapters.totp import PyotpCodes
from gateway.config import Settings
from gateway.domain.throttle import ThrottlePolicy
from gateway.domain.timestamps import rfc3339
from gateway.http.app import create_app, create_ops_app
from gateway.http.keys import HttpServices
from gateway.http.ratelimit import SlidingWindow
from gateway.http.streams import StreamSlots
from gateway.http.vocabulary import vocabulary
from gateway.jobs import every, run_backups, run_retention, run_sweeper
from gateway.promise_checks import promise_checks
from gateway.services.accounts import AccountPolicy, AccountService, email_policy
from gateway.services.api_keys import ApiKeyService
from gateway.services.attempts import Attempts, PasswordCheck
from gateway.services.billing import BillingPolicy, BillingService, PrepaidTime, Reminders
from gateway.services.chain_events import PaymentTracker
from gateway.services.changes import ChangeHub
from gateway.services.email_change import EmailChangeService
from gateway.services.finance import FinanceService
from gateway.services.invoices import CoinRules, InvoicePolicy, InvoiceService, Plan
from gateway.services.legal import LegalNotices, LegalRegisterService
from gateway.services.policy_notices import PolicyNoticeService
from gateway.services.ports import RateProvider, UnitOfWork, UnitOfWorkFactory
from gateway.services.privacy import PrivacyService
from gateway.services.rates import CountedRates, MedianRates, PreferFixed
from gateway.services.reconcile import ReconcileService
from gateway.services.recovery import Links, RecoveryService
from gateway.services.retention import RetentionPeriods, RetentionService
from gateway.services.staff import StaffPolicy, StaffService
from gateway.services.two_factor import SecondFactor, TwoFactorService
from gateway.services.wallet import WalletService
from gateway.services.webhook_endpoints import WebhookEndpointService
from gateway.services.webhook_events import WebhookEventService
from gateway.staff.app import create_staff_app
from gateway.staff.context import Console
from gateway.watcher import ChainWatcher
from webhooks import signing
from webhooks.retry import RetryPolicy
from webhooks.targets import TargetPolicy
from webhooks.worker import DeliveryWorker

Clock = Callable[[], datetime]
log = logging.getLogger(__name__)
BACKGROUND_STOP_SECONDS = 10.0  # what a cancelled background job gets to end


def utcnow() -> datetime:
    return datetime.now(UTC)


class SchemaNotReady(Exception):
    pass


class ListenError(Exception):
    """A listener could not be opened; one line naming the setting."""


# Said after a listener's "address already in use": the likely cause, and the way out.
SEVERAL_INSTANCES = ("is another gateway running on this host? Each instance needs its "
                     "own [server] port, [server] metrics_listen and [staff] listen "
                     "(OPERATIONS.md, \"Several instances on one host\")")


def listen_error(key: str, value: object, exc: OSError) -> ListenError:
    # The system's own words for the error (asyncio and socket.create_server each wrap
    # them in a sentence of their own).
    said = f"{key} {value}: {os.strerror(exc.errno).lower() if exc.errno else exc}"
    if exc.errno == errno.EADDRINUSE:
        said += f"; {SEVERAL_INSTANCES}"
    return ListenError(said)


def build_chains(settings: Settings) -> list[Follower]:
    """One follower per node, built by the family each coin's `kind` names."""
    by_kind: dict[str, dict[str, CoinSettings]] = {}
    for code, coin in settings.coins.items():
        by_kind.setdefault(coin.kind, {})[code] = coin
    followers: list[Follower] = []
    for kind, coins in sorted(by_kind.items()):
        followers.extend(families.get(kind).build(coins))
    return followers


STARTUP_CHECK_SECONDS = 15.0


async def startup_problems(settings: Settings) -> tuple[list[str], list[str]]:
    """What the nodes say about the configuration before `gateway serve` starts: lines
    that must stop the start (a token whose contract says other decimals), and lines that
    only warn (a node that cannot be asked now: its follower checks again when it
    answers, and follows nothing until then). Uses followers of its own, closed after."""
    fatal: list[str] = []
    warnings: list[str] = []
    for follower in build_chains(settings):
        try:
            if isinstance(follower, StartupCheckable):
                part = f"{'/'.join(follower.coins)} node"
                try:
                    await asyncio.wait_for(follower.check_configuration(),
                                           STARTUP_CHECK_SECONDS)
                except NodeProblem as exc:
                    fatal.append(f"{part}: {exc}")
                except Exception as exc:  # down, slow: not a reason to refuse to start
                    warnings.append(f"{part}: configuration not checked ("
                                    f"{describe_failure(exc)}); checked when it answers")
        finally:
            await follower.aclose()
    return fatal, warnings


@dataclass(frozen=True)
class Keys:
    """The configured secrets, decoded once."""

    session: bytes
    index: bytes
    data: list[tuple[str, bytes]]

    @classmethod
    def of(cls, settings: Settings) -> "Keys":
        sec = settings.security
        return cls(base64.b64decode(sec.session_key.get_secret_value()),
                   base64.b64decode(sec.index_key.get_secret_value()),
                   sec.data_key_list())


@dataclass(frozen=True)
class Overrides:
    """What tests may inject into `build`: followers (a fake family's, say), a clock,
    a unit-of-work factory."""

    chains: Sequence[Follower] | None = None
    clock: Clock | None = None
    uow: UnitOfWorkFactory | None = None


@dataclass(frozen=True)
class Services:
    """The use cases, one object each."""

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


@dataclass
class Gateway:
    settings: Settings
    clock: Clock
    keys: Keys
    engine: AsyncEngine
    cipher: FieldCipher
    chains: ChainDirectory
    services: Services
    make_uow: UnitOfWorkFactory  # what the services use: an `Overrides.uow` if injected
    sql_uow: Callable[[], SqlUnitOfWork]  # the database's own, which an override may wrap
    worker: DeliveryWorker
    rates_http: LazySession
    metrics: Metrics
    passwords: Argon2Passwords
    mail: MailSender | None = None  # None without [smtp]: nothing can be sent
    allocator: AsyncEngine | None = None  # PostgreSQL: derivation indexes' own pool
    changes: ChangeHub = field(default_factory=ChangeHub)

    def uow(self) -> UnitOfWork:
        return self.make_uow()

    async def chain_status(self, tip_timeout: float, snap: OpsSnapshot | None = None
                           ) -> dict[str, dict[str, Any]]:
        """Per coin: the node's tip, the height processed (the stored cursor of its feed,
        whichever instance follows it) and the lag. The one place readiness and metrics
        read chain lag from. `snap`: one just read (metrics), not read again."""
        moved: dict[str, datetime] = {}
        recorded: dict[str, tuple[str, datetime]] = {}
        try:
            snap = snap or await snapshot(self.engine)
            heights, moved = snap.processed_heights, snap.processed_at
            recorded = snap.catching_up
        except Exception as exc:  # the database is down: readiness says so on its own
            log.debug("processed heights unavailable (%s)", type(exc).__name__)
            heights = {}
        status: dict[str, dict[str, Any]] = {}
        for follower in self.chains.followers():
            processed = heights.get(follower.feed)
            # A node catching up (here, or as the instance that follows it recorded) is
            # not ready, and is busy: say what it does rather than wait for its tip.
            here = follower.catching_up if isinstance(follower, Restorable) else None
            catching = ((here.describe(), here.since) if here is not None
                        else recorded.get(follower.feed))
            if catching is not None:
                for coin in follower.coins:
                    status[coin] = {"status": f"catching up: {catching[0]}",
                                    "catching_up_since": rfc3339(catching[1]),
                                    "processed_height": processed}
                continue
            try:
                tip = await asyncio.wait_for(follower.tip(), tip_timeout)
            except Exception as exc:
                for coin in follower.coins:
                    status[coin] = {"status": describe_failure(exc),
                                    "processed_height": processed}
                continue
            for coin in follower.coins:
                status[coin] = {
                    "status": "ok",
                    "tip_height": tip.height,
                    "processed_height": processed,
                    "lag_blocks": None if processed is None else max(tip.height - processed, 0),
                    # When the last block was processed (by our clock), for the console.
                    "processed_at": rfc3339(moved[follower.feed])
                    if follower.feed in moved else None,
                }
        return dict(sorted(status.items()))

    async def recorded_catch_ups(self) -> dict[str, tuple[str, datetime]]:
        """Feeds whose node is catching up, as the instance following each recorded it:
        what it reported, and since when."""
        return (await snapshot(self.engine)).catching_up

    async def check_schema(self) -> None:
        head = head_revision(self.settings.database.url)
        current = await current_revision(self.engine)
        if current != head:
            raise SchemaNotReady(
                f"database schema is at {current or 'nothing'}, this version needs {head}: "
                "run `gateway db upgrade`"
            )

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        detail: dict[str, Any] = {"database": "ok", "chains": {}}
        ready = True
        try:
            # A read (no lock on SQLite): a probe polled every few seconds must never
            # take the write lock, nor wait for it.
            async with read_transaction(self.engine) as conn:
                await conn.execute(text("SELECT 1 FROM alembic_version"))
        except Exception as exc:
            detail["database"] = f"unavailable ({type(exc).__name__})"
            ready = False
        for coin, state in (await self.chain_status(5)).items():
            if state["status"] != "ok":
                detail["chains"][coin] = {k: v for k, v in state.items()
                                          if k in ("status", "catching_up_since")}
                ready = False
            else:
                detail["chains"][coin] = state
        return ready, detail

    async def render_metrics(self) -> tuple[bytes, str]:
        """Refresh the gauges that are read at scrape time, then render."""
        snap = await snapshot(self.engine)
        self.metrics.outbox_depth.set(snap.pending_deliveries)
        self.metrics.failing_endpoints.set(snap.failing_endpoints)
        self.metrics.mail_queue_depth.set(snap.queued_mail)
        oldest = snap.oldest_pending
        self.metrics.outbox_oldest.set(
            0 if oldest is None else max((self.clock() - oldest).total_seconds(), 0))
        for coin, state in (await self.chain_status(2, snap)).items():
            self.metrics.node_up.labels(coin).set(1 if state["status"] == "ok" else 0)
            if state["processed_height"] is None:
                continue
            self.metrics.watcher_height.labels(coin).set(state["processed_height"])
            if state["status"] != "ok":  # node down: the lag gauge keeps its last value
                log.debug("%s tip unavailable for metrics (%s)", coin, state["status"])
                continue
            self.metrics.watcher_lag.labels(coin).set(state["lag_blocks"])
        return self.metrics.render(), CONTENT_TYPE

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self.metrics.http_latency.labels(method, route, str(status)).observe(seconds)

    async def aclose(self) -> None:
        await self.chains.aclose()
        await self.worker.aclose()
        await self.rates_http.aclose()
        await dispose(self.engine)
        if self.allocator is not None:
            await self.allocator.dispose()
        self.passwords.close()


def build_rates(settings: Settings, clock: Clock, http: LazySession) -> RateProvider:
    cfg = settings.rates
    median = None
    if cfg.sources:
        sources = [SOURCES[name](name, cfg.base_urls.get(name, DEFAULT_URLS[name]), http)
                   for name in cfg.sources]
        median = MedianRates(sources, clock, timedelta(seconds=cfg.cache_seconds),
                             quorum=cfg.quorum,
                             max_deviation=cfg.max_deviation_percent / 100)
    return PreferFixed(FixedRates(cfg.fixed), set(cfg.fixed), median)


def build(settings: Settings, clock: Clock = utcnow,
          overrides: Overrides | None = None) -> Gateway:
    """Wire every adapter. Performs no I/O: connections open on first use."""
    overrides = overrides or Overrides()
    clock = overrides.clock or clock
    sec = settings.security
    keys = Keys.of(settings)
    engine = make_engine(settings.database.url, hide_parameters=True)
    # PostgreSQL: derivation indexes come from a pool of their own (SqlInvoices.allocate).
    allocator = (make_engine(settings.database.url, hide_parameters=True, pool_size=1,
                             max_overflow=3)
                 if engine.dialect.name == "postgresql" else None)
    cipher = FieldCipher(keys.data, read_legacy=sec.read_legacy_ciphertexts)
    nodes = (list(overrides.chains) if overrides.chains is not None
             else build_chains(settings))
    chains = ChainDirectory(nodes)
    unconfigured = sorted(set(chains.coins()) - set(settings.coins))
    if unconfigured:  # an injected follower serving a coin the configuration lacks
        raise ValueError(f"followers serve coins without a [coins.*] table: {unconfigured}")
    store = SqlDeliveryStore(engine, cipher)
    metrics = Metrics()
    # One rule for webhook targets: checked at endpoint creation and at every connect.
    targets = TargetPolicy.of(settings.webhooks.allow_private_targets,
                              settings.webhooks.allow_public_targets)
    worker = DeliveryWorker(
        store,
        clock,
        RetryPolicy(tuple(timedelta(seconds=s) for s in settings.webhooks.retry_schedule_seconds)),
        timeout=settings.webhooks.timeout_seconds,
        concurrency=settings.webhooks.concurrency,
        per_endpoint=settings.webhooks.per_endpoint_concurrency,
        on_attempt=metrics.attempt,
        targets=targets,
    )

    index = BlindIndex(keys.index)
    sender: MailSender | None = None
    changes = ChangeHub()  # open checkout streams wait on it

    def wake_sender() -> None:
        if sender is not None:
            sender.wake()

    def sql_uow() -> SqlUnitOfWork:
        # Billing queues its reminder mail inside its own transactions.
        return SqlUnitOfWork(engine, cipher, worker.wake, clock=clock, mail_index=index,
                             on_mail=wake_sender, allocator=allocator,
                             on_change=changes.publish)

    def sql_reader() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, cipher, read_only=True, clock=clock)

    uow: UnitOfWorkFactory = overrides.uow or sql_uow
    reader: UnitOfWorkFactory = overrides.uow or sql_reader
    tokens = SessionTokens(keys.session, settings.server.public_url)
    rates_http = LazySession(settings.rates.timeout_seconds)
    passwords = Argon2Passwords(concurrency=sec.hash_concurrency or default_concurrency(),
                                max_waiting=sec.hash_max_waiting,
                                max_wait_seconds=sec.hash_max_wait_seconds)
    codes = PyotpCodes()
    session_key = keys.session
    # One policy for every failure counter: logins, logged-in password checks and the
    # per-account second-factor counter (gateway.services.attempts).
    throttle = ThrottlePolicy(
        free_failures=sec.login_free_failures,
        max_delay=timedelta(seconds=sec.login_max_delay_seconds),
        max_failures_per_window=sec.login_failures_per_hour,
    )
    attempts = Attempts(throttle, clock)
    common = CommonPasswords()
    two_factor = TwoFactorService(uow, codes, passwords,
                                  SecondFactor(codes, passwords, clock), clock,
                                  PasswordCheck(uow, passwords, index, attempts), attempts,
                                  reader=reader)
    if settings.smtp is not None:
        smtp = settings.smtp
        direct: SmtpMailer | NoMailer = SmtpMailer(
            smtp.host, smtp.port, smtp.from_, smtp.username,
            smtp.password.get_secret_value() if smtp.password else None, bool(smtp.starttls),
            smtp.tls)
        # Every mail a request causes goes through the durable queue; the background
        # sender (background_tasks) hands it to SMTP, with retries.
        queue = SqlMailQueue(engine, cipher, index)
        sender = MailSender(queue, direct, clock, MailPolicy(
            tuple(timedelta(seconds=s) for s in settings.mail.retry_schedule_seconds),
            timedelta(hours=settings.mail.max_age_hours)), on_outcome=metrics.mail)
        mailer: QueuedMailer | NoMailer = QueuedMailer(queue, clock, sender.wake)
    else:
        direct = mailer = NoMailer()
    pages = f"{settings.server.public_url}{settings.server.path_prefix}"
    links = Links(f"{pages}/reset?token=", f"{pages}/verify-email?token=",
                  f"{pages}/email-change?token=", f"{pages}/email-change/undo?token=",
                  f"{pages}/login")
    recovery = RecoveryService(
        uow, mailer,
        PurposeTokens(session_key, settings.server.public_url, clock, "password-reset"),
        passwords, index, two_factor, clock, links,
        timedelta(minutes=settings.accounts.password_reset_minutes),
        PurposeTokens(session_key, settings.server.public_url, clock, "verify-email"),
        settings.mail.per_recipient_per_hour,
        common,
        reader=reader,
    )
    email_changes = EmailChangeService(
        uow, mailer,
        PurposeTokens(session_key, settings.server.public_url, clock, "email-change", cipher),
        PurposeTokens(session_key, settings.server.public_url, clock, "email-change-undo",
                      cipher),
        index, passwords, two_factor, recovery, clock, links, throttle)
    inv = settings.invoices
    ret = settings.retention
    policy = InvoicePolicy(
        expiry=timedelta(minutes=inv.expiry_minutes),
        monitoring=timedelta(minutes=inv.monitoring_minutes),
        tolerance_basis_points=int(inv.underpayment_tolerance_percent * Decimal(100)),
        accept_late_payments=inv.accept_late_payments,
        max_open_per_account=inv.max_open_per_account,
    )
    grace, lead, second = settings.billing.durations()
    prepaid = PrepaidTime(
        {name: period for name, plan in settings.plans.items()
         if (period := plan.parsed_period()) is not None},
        BillingPolicy(grace, lead, second, settings.billing.overpayment_buys_periods,
                      settings.billing.max_periods_per_invoice))
    invoices = InvoiceService(
        uow, chains, CountedRates(build_rates(settings, clock, rates_http),
                                  metrics.rates_unavailable.inc,
                                  metrics.rates_last_success.set_to_current_time),
        clock, policy,
        {c: CoinRules(settings.confirmations(c)) for c in chains.coins()},
        {name: Plan(name, plan.fiat(), plan.description, plan.fiat_prices())
         for name, plan in settings.plans.items()},
        reader=reader,
    )
    services = Services(
        accounts=AccountService(
            uow,
            passwords,
            index,
            tokens,
            clock,
            AccountPolicy(
                tuple(settings.accounts.datacenters),
                tuple(settings.accounts.currencies),
                settings.privacy.policy_version,
                timedelta(hours=sec.session_hours),
                timedelta(minutes=sec.session_idle_minutes),
                settings.accounts.require_email_verification,
            ),
            two_factor,
            throttle,
            reader=reader,
            email_throttle=email_policy(throttle, sec.login_failures_per_email_per_hour),
            common_passwords=common,
        ),
        two_factor=two_factor,
        recovery=recovery,
        email_changes=email_changes,
        api_keys=ApiKeyService(uow, clock, new_api_key, hash_api_key, reader=reader),
        invoices=invoices,
        billing=BillingService(
            uow, invoices, clock, prepaid,
            Reminders(f"{pages}/pay/", f"{pages}/account") if sender is not None else None,
            reader=reader),
        endpoints=WebhookEndpointService(
            uow, clock, signing.new_secret, targets,
            rotation_overlap=timedelta(hours=settings.webhooks.rotation_overlap_hours),
            reader=reader,
        ),
        events=WebhookEventService(uow, clock, reader=reader),
        tracker=PaymentTracker(
            uow, clock, timedelta(minutes=settings.invoices.block_time_tolerance_minutes),
            feed_of=chains.feed, prepaid=prepaid,
            # Invoices keep the requirement they were created with: leave room for a
            # setting lowered since (one missed still settles at the latest sweep).
            max_confirmations=max([100, *(2 * settings.confirmations(c)
                                          for c in chains.coins())])),
        wallet=WalletService(uow, {c: chains.address_space(c) for c in chains.coins()},
                             reader=reader),
        retention=RetentionService(uow, clock, RetentionPeriods(
            security_log=timedelta(days=ret.security_log_days),
            idempotency_keys=timedelta(hours=ret.idempotency_hours),
            delivery_logs=timedelta(days=ret.delivery_log_days),
            mail_queue=timedelta(hours=settings.mail.max_age_hours),
            audit_log_after_deletion=timedelta(days=ret.audit_log_days_after_deletion),
            login_throttle=timedelta(hours=ret.login_throttle_hours),
            disabled_endpoint_events=timedelta(days=ret.disabled_endpoint_days),
            inactive_unpaid=timedelta(days=ret.inactive_unpaid_days),
            inactivity_notice=timedelta(days=ret.inactivity_notice_days),
            inactive_lapsed=timedelta(days=ret.inactive_lapsed_days),
            legal_requests=timedelta(days=ret.legal_request_days),
            deletion_ledger=timedelta(days=ret.deletion_ledger_days)),
            flush=lambda: erase_residue(engine),
            mailer=mailer if settings.smtp is not None else None,
            login_url=links.login,
            ledger=_ledger(settings)),
        privacy=PrivacyService(
            uow, passwords, index,
            two_factor, clock, timedelta(days=ret.deletion_grace_days),
            settings.privacy.policy_version, throttle, reader=reader),
        finance=FinanceService(uow, chains.coins(), chains.feed, _assets(nodes), reader=reader),
        # Policy notices are sent by an operator's batch command that paces itself and
        # records each mail the SMTP server accepted, so it mails directly (OPERATIONS.md).
        notices=PolicyNoticeService(
            uow, direct, clock, settings.privacy.policy_version,
            f"{settings.server.public_url}{settings.server.path_prefix}/account"),
        reconcile=ReconcileService(uow, _auditable(nodes), reader=reader),
        staff=StaffService(uow, passwords, codes, index, clock, StaffPolicy(
            timedelta(minutes=settings.staff.session_minutes),
            timedelta(minutes=settings.staff.idle_minutes)), throttle, common,
            reader=reader),
        # The notification mail is queued in the transaction that allows it (the
        # unit of work holds the mail queue), and sent by the instances' mail senders.
        legal=LegalRegisterService(
            uow, clock, reader=reader,
            notices=LegalNotices(f"{pages}/account") if settings.smtp is not None else None),
    )
    return Gateway(settings=settings, clock=clock, keys=keys, engine=engine, cipher=cipher,
                   chains=chains, services=services, worker=worker, rates_http=rates_http,
                   metrics=metrics, passwords=passwords, mail=sender, allocator=allocator,
                   changes=changes, make_uow=uow, sql_uow=sql_uow)


def _ledger(settings: Settings) -> FileDeletionLedger | None:
    path = settings.backup.ledger_path()
    return FileDeletionLedger(path) if path is not None else None


def _assets(followers: Sequence[Follower]) -> dict[str, str]:
    """coin -> token contract, for the followers whose coins are tokens."""
    return {coin: follower.asset(coin) for follower in followers
            if isinstance(follower, HasAssets) for coin in follower.coins}


def _auditable(followers: Sequence[Follower]) -> dict[str, Auditable]:
    """The followers that can answer a reconciliation's questions, by coin."""
    found: dict[str, Auditable] = {}
    for follower in followers:
        if isinstance(follower, Auditable):
            for coin in follower.coins:
                found[coin] = follower
    return found



# For the backup commands (entry points reach adapters through here): what a backup run
# can fail with, and the pruning of old backups.
__all__ = ["BackupError", "BackupFormatError", "Gateway", "Overrides", "backup_times",
           "build", "build_app", "build_backups", "prune_backups"]
prune_backups = prune


def build_backups(settings: Settings) -> Backups:
    """Raises `ConfigError` when no [backup] key is configured."""
    return Backups(settings.database.url, settings.backup.key_bytes())


def background_tasks(gw: Gateway) -> list[Coroutine[Any, Any, None]]:
    leadership = (
        AdvisoryLockLeadership(gw.engine)
        if gw.engine.dialect.name == "postgresql"
        else LocalLeadership()
    )
    # Delivery workers run everywhere (they claim with SKIP LOCKED); each chain watcher
    # and the sweeper run on one instance at a time.
    jobs: list[Coroutine[Any, Any, None]] = [
        gw.worker.run(),
        leadership.run_exclusively("gateway:sweeper", lambda: run_sweeper(gw.services.tracker)),
        leadership.run_exclusively("gateway:retention", lambda: run_retention(
            gw.services.retention, gw.settings.retention.interval_seconds,
            gw.metrics.retention_run)),
        # Renewals, reminders and billing states: one instance at a time (and idempotent
        # anyway: docs/prepaid-time.md).
        leadership.run_exclusively("gateway:billing", lambda: every(
            gw.settings.billing.interval_seconds, gw.services.billing.run, "billing run")),
    ]
    if gw.engine.dialect.name == "postgresql":
        # Every instance hears the others' changes for its open checkout streams.
        jobs.append(notify.listen(gw.settings.database.url, gw.changes.publish))
    if gw.mail is not None:
        jobs.append(gw.mail.run())  # on every instance: mail is claimed with SKIP LOCKED
    backup = gw.settings.backup
    if backup.dir is not None and backup.key is not None:
        folder = Path(backup.dir)
        jobs.append(leadership.run_exclusively("gateway:backup", lambda: run_backups(
            build_backups(gw.settings), folder,
            timedelta(days=gw.settings.retention.backup_days),
            backup.interval_hours * 3600, gw.clock, prune,
            lambda run: gw.metrics.backup_run(run.written is not None, run.prune_failed))))
    for follower in gw.chains.followers():
        # One watcher per follower (per node); its lock is named after its feed.
        watcher = ChainWatcher(follower, gw.services.tracker,
                               SqlWatchlist(gw.engine, follower.address_space))
        jobs.append(leadership.run_exclusively(f"gateway:watcher:{follower.feed}",
                                               watcher.run))
    return jobs


def build_app(gw: Gateway) -> web.Application:
    services = HttpServices(
        accounts=gw.services.accounts,
        two_factor=gw.services.two_factor,
        recovery=gw.services.recovery,
        api_keys=gw.services.api_keys,
        invoices=gw.services.invoices,
        endpoints=gw.services.endpoints,
        events=gw.services.events,
        privacy=gw.services.privacy,
        finance=gw.services.finance,
        readiness=gw.readiness,
        metrics=gw.render_metrics,
        observe=gw.observe_http,
        trusted_proxies=tuple(ipaddress.ip_network(c, strict=False)
                              for c in gw.settings.server.trusted_proxies),
        login_limit=SlidingWindow(gw.settings.security.login_per_ip_per_minute, 60),
        signup_limit=SlidingWindow(gw.settings.security.signup_per_ip_per_hour, 3600),
        stream_slots=StreamSlots(gw.settings.server.event_streams_per_client,
                                 gw.settings.server.event_streams_total,
                                 gw.settings.server.event_streams_per_account),
        invoice_limit=SlidingWindow(gw.settings.security.portal_invoices_per_ip_per_hour,
                                    3600),
        changes=gw.changes,
        datacenters=tuple(gw.settings.accounts.datacenters),
        currencies=tuple(gw.settings.accounts.currencies),
        csrf_key=gw.keys.session,
        email_changes=gw.services.email_changes,
        billing=gw.services.billing,
        vocabulary=vocabulary(gw.settings),
    )
    app = create_app(services, gw.settings.server.path_prefix)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        ops = await start_ops_listener(gw, services)
        try:
            staff = await start_staff_listener(gw, services)
        except ListenError:
            if ops is not None:
                await ops.cleanup()
            raise
        tasks = [asyncio.create_task(job) for job in background_tasks(gw)]
        yield
        for task in tasks:
            task.cancel()
        # Bounded: a job that ignores its cancellation must not keep the process from
        # stopping (systemd would SIGKILL it mid-cleanup); it is named instead.
        _, pending = (await asyncio.wait(tasks, timeout=BACKGROUND_STOP_SECONDS)
                      if tasks else (set(), set()))
        if pending:
            log.warning("stopping: %d background job(s) did not end within %.0f s: %s",
                        len(pending), BACKGROUND_STOP_SECONDS,
                        ", ".join(sorted(t.get_name() for t in pending)))
        for runner in (staff, ops):
            if runner is not None:
                await runner.cleanup()
        await gw.aclose()

    app.cleanup_ctx.append(lifecycle)
    return app


async def start_ops_listener(gw: Gateway, services: HttpServices) -> web.AppRunner | None:
    """/metrics and /readyz on their own listener ([server] metrics_listen), if any."""
    address = gw.settings.server.metrics_address()
    if address is None:
        return None
    runner = web.AppRunner(create_ops_app(services), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, *address).start()
    except OSError as exc:
        await runner.cleanup()
        raise listen_error("[server] metrics_listen", gw.settings.server.metrics_listen,
                           exc) from None
    return runner


async def start_staff_listener(gw: Gateway, services: HttpServices) -> web.AppRunner | None:
    """The staff console on its own listener ([staff] listen), if any; never on the
    public one."""
    address = gw.settings.staff.address()
    if address is None:
        return None

    async def outbox() -> tuple[int, tuple[str, ...]]:
        snap = await snapshot(gw.engine)
        return snap.pending_deliveries, snap.failing_endpoint_ids

    s = gw.services
    console = Console(
        staff=s.staff, accounts=s.accounts, api_keys=s.api_keys, invoices=s.invoices,
        endpoints=s.endpoints, events=s.events, privacy=s.privacy, finance=s.finance,
        reconcile=s.reconcile, chain_status=lambda: gw.chain_status(2), outbox=outbox,
        promises=lambda: promise_checks(gw.settings, s.retention, gw.clock(), backup_times),
        coins=gw.chains.coins(), trusted_proxies=services.trusted_proxies,
        login_limit=SlidingWindow(gw.settings.security.login_per_ip_per_minute, 60),
        csrf_key=gw.keys.session)
    ssl_context = None
    cfg = gw.settings.staff
    if cfg.tls_cert is not None and cfg.tls_key is not None:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.minimum_version = ssl.TLSVersion.TLSv1_3
        try:
            ssl_context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ListenError(f"[staff] tls_cert/tls_key: {exc}") from None
    runner = web.AppRunner(create_staff_app(console), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, *address, ssl_context=ssl_context).start()
    except OSError as exc:
        await runner.cleanup()
        raise listen_error("[staff] listen", gw.settings.staff.listen, exc) from None
    return runner
