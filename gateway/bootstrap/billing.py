"""Invoices and billing: exchange rates, invoices, prepaid time and renewals, the
payment tracker the watchers feed, finance exports and reconciliation."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from gateway.adapters.rate_sources import DEFAULT_URLS, SOURCES, LazySession
from gateway.adapters.rates import FixedRates
from gateway.bootstrap.chains import ChainsArea
from gateway.bootstrap.core import Clock, Core
from gateway.bootstrap.mail import MailArea
from gateway.bootstrap.resources import Resource
from gateway.config import Settings
from gateway.domain.crediting import CreditRules
from gateway.domain.throttle import ThrottlePolicy
from gateway.services.billing import BillingPolicy, BillingService, PrepaidTime, Reminders
from gateway.services.chain_events import PaymentTracker
from gateway.services.credit import CreditPolicy, CreditService
from gateway.services.credit_spending import PlanPurchases
from gateway.services.finance import FinanceService
from gateway.services.invoices import CoinRules, InvoicePolicy, InvoiceService, Plan
from gateway.services.ports import RateProvider
from gateway.services.rates import AssetRates, CountedRates, MedianRates, PreferFixed
from gateway.services.reconcile import ReconcileService
from gateway.services.vouchers import VoucherPolicy, VoucherService


@dataclass(frozen=True, kw_only=True)
class BillingArea:
    invoices: InvoiceService
    billing: BillingService
    tracker: PaymentTracker
    finance: FinanceService
    reconcile: ReconcileService
    rates_http: LazySession
    credit: CreditService
    purchases: PlanPurchases
    vouchers: VoucherService

    def resources(self) -> list[Resource]:
        return [Resource("rate sources' HTTP session", self.rates_http.aclose)]


def build_rates(settings: Settings, clock: Clock, http: LazySession) -> RateProvider:
    cfg = settings.rates
    median = None
    if cfg.sources:
        sources = [SOURCES[name](name, cfg.base_urls.get(name, DEFAULT_URLS[name]), http)
                   for name in cfg.sources]
        median = MedianRates(sources, clock, timedelta(seconds=cfg.cache_seconds),
                             quorum=cfg.quorum,
                             max_deviation=cfg.max_deviation_percent / 100)
    assets = {code: coin.asset for code, coin in settings.coins.items()
              if coin.asset is not None and coin.asset != code}
    return AssetRates(PreferFixed(FixedRates(cfg.fixed), set(cfg.fixed), median), assets)


def invoice_policy(settings: Settings) -> InvoicePolicy:
    inv = settings.invoices
    return InvoicePolicy(
        expiry=timedelta(minutes=inv.expiry_minutes),
        monitoring=timedelta(minutes=inv.monitoring_minutes),
        tolerance_basis_points=int(inv.underpayment_tolerance_percent * Decimal(100)),
        accept_late_payments=inv.accept_late_payments,
        max_open_per_account=inv.max_open_per_account,
    )


def prepaid_time(settings: Settings) -> PrepaidTime:
    grace, lead, second = settings.billing.durations()
    return PrepaidTime(
        {name: period for name, plan in settings.plans.items()
         if (period := plan.parsed_period()) is not None},
        BillingPolicy(grace, lead, second, settings.billing.overpayment_buys_periods,
                      settings.billing.max_periods_per_invoice))


def _rates(core: Core, rates_http: LazySession) -> RateProvider:
    metrics = core.metrics
    return CountedRates(build_rates(core.settings, core.clock, rates_http),
                        metrics.rates_unavailable.inc,
                        metrics.rates_last_success.set_to_current_time)


def credit_policy(settings: Settings) -> CreditPolicy:
    c = settings.credit
    return CreditPolicy(
        CreditRules(c.underpaid_to_credit, c.overpaid_to_credit, c.late_to_credit),
        c.expires_after(),
        block_time_tolerance=timedelta(minutes=settings.invoices.block_time_tolerance_minutes))


def _invoices(core: Core, chains: ChainsArea, rates: RateProvider) -> InvoiceService:
    settings, directory = core.settings, chains.directory
    return InvoiceService(
        core.make_uow, chains=directory, rates=rates, clock=core.clock,
        policy=invoice_policy(settings),
        coin_rules={c: CoinRules(settings.confirmations(c)) for c in directory.coins()},
        plans=_plans(settings),
        reader=core.reader)


def _plans(settings: Settings) -> dict[str, Plan]:
    return {name: Plan(name, plan.fiat(), plan.description, plan.fiat_prices())
            for name, plan in settings.plans.items()}


def voucher_policy(settings: Settings) -> VoucherPolicy:
    v = settings.vouchers
    delay = timedelta(seconds=v.max_delay_seconds)
    return VoucherPolicy(
        per_account=ThrottlePolicy(free_failures=v.free_failures, max_delay=delay,
                                   max_failures_per_window=v.failures_per_account_per_hour),
        per_network=ThrottlePolicy(free_failures=v.free_failures, max_delay=delay,
                                   max_failures_per_window=v.failures_per_network_per_hour))


def _vouchers(core: Core, chains: ChainsArea, prepaid: PrepaidTime) -> VoucherService:
    return VoucherService(core.make_uow, hash_code=core.index, plans=_plans(core.settings),
                          periods=dict(prepaid.periods), coins=chains.directory.coins,
                          clock=core.clock, policy=voucher_policy(core.settings),
                          reader=core.reader)


def _tracker(core: Core, chains: ChainsArea, prepaid: PrepaidTime) -> PaymentTracker:
    settings, directory = core.settings, chains.directory
    return PaymentTracker(
        core.watcher_uow, core.clock,
        block_time_tolerance=timedelta(minutes=settings.invoices.block_time_tolerance_minutes),
        feed_of=directory.feed, prepaid=prepaid,
        # Invoices keep the requirement they were created with: leave room for a
        # setting lowered since (one missed still settles at the latest sweep).
        max_confirmations=max([100, *(2 * settings.confirmations(c)
                                      for c in directory.coins())]))


def build_billing(core: Core, chains: ChainsArea, mail: MailArea) -> BillingArea:
    uow, reader = core.make_uow, core.reader
    server = core.settings.server
    pages = f"{server.public_url}{server.path_prefix}"
    rates_http = LazySession(core.settings.rates.timeout_seconds)
    rates = _rates(core, rates_http)
    invoices = _invoices(core, chains, rates)
    prepaid = prepaid_time(core.settings)
    reminders = (Reminders(f"{pages}/pay/", f"{pages}/account", core.catalogs)
                 if mail.configured else None)
    directory = chains.directory
    return BillingArea(
        invoices=invoices,
        billing=BillingService(uow, invoices, clock=core.clock, prepaid=prepaid,
                               reminders=reminders, reader=reader),
        tracker=_tracker(core, chains, prepaid),
        finance=FinanceService(uow, directory.coins(), directory.feed, chains.assets(),
                               reader=reader),
        reconcile=ReconcileService(uow, chains.auditable(), reader=reader),
        rates_http=rates_http,
        credit=CreditService(uow, rates=rates, clock=core.clock,
                             policy=credit_policy(core.settings), feed_of=directory.feed,
                             reader=reader),
        purchases=PlanPurchases(uow, invoices, dict(prepaid.periods), core.clock,
                                reader=reader),
        vouchers=_vouchers(core, chains, prepaid))
