"""Prepaid time: what a settled plan invoice buys, the renewal invoices, their reminders,
and the account's billing state over time (the periodic task, `BillingService.run`).

Every step is one transaction that locks the account row, and the renewal of a period is
a unique key (account, period): several instances, a restart or a clock jump never create
a second renewal invoice for a period, and the account's stored state decides which
webhook is due, so none is sent twice."""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.domain.accounts import Account
from gateway.domain.billing import Period, extend, periods_paid
from gateway.domain.errors import InvalidInput
from gateway.domain.invoices import (
    Invoice,
    ObservedPayment,
    Status,
    completion_time,
)
from gateway.domain.money import Fiat
from gateway.i18n import ENGLISH, N_, Catalogs
from gateway.logs import failure
from gateway.services.credit_spending import buy_period
from gateway.services.errors import NotFound
from gateway.services.invoices import CREDIT_APPLIED, InvoiceService, take_credit
from gateway.services.ports import BillingUnit, Clock, PrepaidUnit, RenewalRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BillingPolicy:
    grace: timedelta = timedelta(days=3)
    # The renewal invoice is created this long before paid_until; the second reminder
    # goes this long before it.
    renewal_lead: timedelta = timedelta(days=7)
    second_reminder: timedelta = timedelta(days=1)
    # An overpayment buys as many whole periods as it covers (else exactly one).
    overpayment_buys_periods: bool = False
    max_periods_per_invoice: int = 36
    # A change of plan or coin replaces the period's unpaid renewal invoice at most this
    # often (each replacement takes a fresh address); later changes apply from the next.
    max_renewal_replacements: int = 5


@dataclass(frozen=True)
class PrepaidTime:
    """The plans' periods and the policy: what a settled invoice does to its account."""

    periods: dict[str, Period] = field(default_factory=dict)  # plan -> period
    policy: BillingPolicy = BillingPolicy()

    def period_of(self, invoice: Invoice) -> tuple[str, Period] | None:
        plan = invoice.metadata.get("plan")
        if isinstance(plan, str) and plan in self.periods:
            return plan, self.periods[plan]
        return None

    async def settled(self, uow: PrepaidUnit, invoice: Invoice,
                      payments: Sequence[ObservedPayment], now: datetime) -> None:
        """Called in the transaction that settles `invoice`. A plan invoice extends the
        account's paid time (once per invoice: the paid period is keyed by the invoice);
        any other activates the account the first time, as before."""
        # Locked: two invoices of one account settling at once extend it one by one.
        account = await uow.accounts.get(invoice.account_id, for_update=True)
        if account is None:
            return
        found = self.period_of(invoice)
        if found is None:
            account.activate(invoice.id, invoice.metadata, now)
        else:
            plan, period = found
            # Only what settled the invoice buys time: payments at the required depth
            # and not locked. One still in the mempool may yet be double-spent, and the
            # periods it bought would stay.
            counted = _counted(invoice, payments)
            # When it was paid: our own first sighting, or the block's time when we first
            # saw it in a block (without the lateness tolerance, which would give time
            # away); never later than now.
            paid_at = completion_time(counted, invoice.terms.threshold, timedelta(0)) or now
            received = sum(p.amount for p in counted)
            # An invoice reduced by credit buys its one period (what it received beyond
            # goes to credit, docs/credit.md): its amount due is not a period's price.
            count = periods_paid(invoice.terms.amount_due, received,
                                 self.policy.overpayment_buys_periods
                                 and CREDIT_APPLIED not in invoice.metadata,
                                 self.policy.max_periods_per_invoice)
            extension = extend(account.paid_until, min(paid_at, now), period, count,
                               account.paid_since)
            if account.deleted or not await uow.billing.record_period(
                    invoice.id, account.id, plan, extension, now):
                return
            account.credit(invoice.id, plan, invoice.coin, extension, invoice.metadata, now)
        if account.events:
            await uow.accounts.save(account)

    async def reverted(self, uow: PrepaidUnit, invoice: Invoice,
                       payments: Sequence[ObservedPayment], now: datetime) -> None:
        """Called in the transaction that observed a settled plan invoice lose a payment
        for good (reverted: double-spent, replaced, dropped). The periods the payments
        that remain no longer cover are taken back from the account, once: the recorded
        period shrinks with them. A payment only unconfirmed for now (a reorg) takes
        nothing back until it is gone."""
        found = self.period_of(invoice)
        if found is None or not any(p.reverted for p in payments):
            return
        _plan, period = found
        remaining = sum(p.amount for p in payments if not p.reverted)
        should = (0 if remaining < invoice.terms.threshold else periods_paid(
            invoice.terms.amount_due, remaining, self.policy.overpayment_buys_periods
            and CREDIT_APPLIED not in invoice.metadata, self.policy.max_periods_per_invoice))
        bought = await uow.billing.paid_period(invoice.id)
        if bought is None or bought.periods <= should:
            return
        ends_at = period.add(bought.starts_at, should) if should else bought.starts_at
        account = await uow.accounts.get(invoice.account_id, for_update=True)
        if account is None or account.deleted or account.paid_until is None:
            return
        await uow.billing.shorten_period(invoice.id, should, ends_at)
        # Later periods follow on from this one: the whole run moves back by as much.
        account.take_back(invoice.id, bought.periods - should,
                          account.paid_until - (bought.ends_at - ends_at), now)
        await uow.accounts.save(account)
        log.warning("billing: invoice %s lost a payment after settlement; %d period(s) "
                    "taken back from account %s", invoice.id, bought.periods - should,
                    account.id)


def _counted(invoice: Invoice, payments: Sequence[ObservedPayment]) -> list[ObservedPayment]:
    required = invoice.terms.confirmations_required
    return [p for p in payments
            if not p.reverted and p.confirmations >= required and not p.locked]


@dataclass(frozen=True)
class Reminders:
    """Where the links in the reminder mail point; None: no mail can be sent."""

    pay_url: str  # + invoice id
    account_url: str
    catalogs: Catalogs = ENGLISH  # the mail is in the account's language


REMINDER_SUBJECT = N_("Your service is paid until %(ends)s")
SECOND_REMINDER_SUBJECT = N_("Reminder: your service is paid until %(ends)s")
REMINDER_BODY = N_("Your %(plan)s service is paid until %(ends)s.\n\n"
                   "To keep it running, pay the renewal invoice:\n%(link)s\n\n"
                   "You can change the coin or the plan, or turn these reminders off, at\n"
                   "%(account_url)s\n")


@dataclass(frozen=True)
class RenewalView:
    """What a customer (and the API) sees of their prepaid time."""

    account: Account
    next_invoice: RenewalRecord | None  # the renewal invoice of the current period
    next_invoice_at: datetime | None  # when it is (or was) created


class BillingService:
    def __init__(self, uow: Callable[[], BillingUnit], invoices: InvoiceService, *, clock: Clock,
                 prepaid: PrepaidTime, reminders: Reminders | None,
                 reader: Callable[[], BillingUnit] | None = None) -> None:
        self._uow = uow
        self._reader = reader or uow
        self._invoices = invoices
        self._clock = clock
        self._prepaid = prepaid
        self._policy = prepaid.policy
        self._reminders = reminders

    @property
    def prepaid(self) -> PrepaidTime:
        return self._prepaid

    # -- the periodic task -------------------------------------------------------------
    async def run(self) -> int:
        """One round: renewal invoices due, state changes due, second reminders due.
        Returns how many accounts or renewals it acted on."""
        now = self._clock()
        p = self._policy
        async with self._reader() as uow:
            due = await uow.billing.due(now, p.renewal_lead, p.grace)
        acted = 0
        for account_id in due:
            try:
                acted += await self._account(account_id, now)
            except Exception as exc:  # one account's trouble never stops the others
                # Not log.exception: a database error's message quotes its parameters.
                log.error("billing: account %s failed: %s", account_id, failure(exc))
        if self._reminders is not None:
            async with self._reader() as uow:
                second = await uow.billing.second_reminders_due(now, p.second_reminder)
            for renewal in second:
                acted += await self._second_reminder(renewal, now)
        return acted

    async def _account(self, account_id: str, now: datetime) -> int:
        acted = 0
        # The renewal first: an account whose period ends is asked to pay before (or as)
        # it is told it is in grace, even after downtime or a clock jump.
        async with self._reader() as uow:
            account = await uow.accounts.get(account_id)
            needs = (account is not None and account.renewal_due(now, self._policy.renewal_lead)
                     and account.paid_until is not None
                     and await uow.billing.renewal(account_id, account.paid_until) is None)
        if needs:
            assert account is not None
            try:
                acted += await self._renew(account, now)
            except Exception as exc:  # no rate, node down: tried again next round
                log.warning("billing: no renewal invoice for account %s yet (%s)",
                            account_id, type(exc).__name__)
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id, for_update=True)
            if account is not None and account.advance(now, self._policy.grace):
                await uow.accounts.save(account)
                await uow.commit()
                acted += 1
        return acted

    async def _renew(self, seen: Account, now: datetime) -> int:
        assert seen.plan is not None and seen.renewal_coin is not None
        assert seen.paid_until is not None
        try:
            plan = self._invoices.plan(seen.plan)
        except InvalidInput:
            log.warning("billing: account %s renews plan %r, which is no longer configured; "
                        "no renewal invoice", seen.id, seen.plan)
            return 0
        coin = self._coin(seen.renewal_coin)
        price = plan.price_in(seen.currency)
        # Credit first (docs/credit.md): all of the price, or part of it.
        credit = await self._credit_first(seen, plan.name, coin, price, now)
        if credit is None:
            return 1
        used, price, metadata = credit
        # The rate is fetched before the transaction: no lock is held across I/O.
        invoice = await self._invoices.prepare(
            seen.id, price, coin, metadata, valid_until=seen.paid_until)
        async with self._uow() as uow:
            account = await uow.accounts.get(seen.id, for_update=True)
            if (account is None or account.paid_until != seen.paid_until
                    or not account.renewal_due(now, self._policy.renewal_lead)
                    or await uow.billing.renewal(account.id, seen.paid_until) is not None):
                return 0  # paid, deleted or renewed meanwhile (another instance)
            await self._invoices.insert(uow, invoice)
            if CREDIT_APPLIED in metadata:
                await take_credit(uow, invoice, used, now)
            mail = self._reminders is not None and account.renewal_reminders
            if not await uow.billing.add_renewal(account.id, seen.paid_until, invoice.id, now,
                                                 mail):
                return 0  # rolled back: the period has its renewal already
            account.expiring(invoice.id, {"amount": price.as_decimal_string(),
                                          "currency": price.currency})
            await uow.accounts.save(account)
            if mail:
                await self._mail(uow, account, invoice.id, now, first=True)
            await uow.commit()
        log.info("billing: renewal invoice %s created for account %s", invoice.id, seen.id)
        return 1

    async def _credit_first(self, seen: Account, plan: str, coin: str, price: Fiat,
                            now: datetime) -> tuple[Fiat, Fiat, dict[str, object]] | None:
        """None when credit alone renewed the period; else (credit to take, price left
        to invoice, the invoice's metadata)."""
        async with self._reader() as uow:
            balance = await uow.credit.balance(seen.id, price.currency)
        if balance >= price.minor and plan in self._prepaid.periods:
            if await self._renew_from_credit(seen, plan, coin, price, now):
                return None
        used = Fiat(min(max(balance, 0), price.minor), price.currency)
        metadata: dict[str, object] = {"plan": plan}
        if 0 < used.minor < price.minor and price.currency == (seen.currency
                                                                or price.currency):
            metadata[CREDIT_APPLIED] = used.as_decimal_string()
            return used, Fiat(price.minor - used.minor, price.currency), metadata
        return used, price, metadata

    async def _renew_from_credit(self, seen: Account, plan: str, coin: str, price: Fiat,
                                 now: datetime) -> bool:
        """The period renewed from credit alone: no invoice (`via: credit`)."""
        async with self._uow() as uow:
            account = await uow.accounts.get(seen.id, for_update=True)
            if (account is None or account.paid_until != seen.paid_until
                    or not account.renewal_due(now, self._policy.renewal_lead)):
                return False
            if await buy_period(uow, account, plan, self._prepaid.periods[plan], coin,
                                price, now) is None:
                return False
            await uow.commit()
        log.info("billing: account %s renewed from its credit", seen.id)
        return True

    def _coin(self, coin: str) -> str:
        accepted = self._invoices.coins()
        return coin if coin in accepted or not accepted else accepted[0]

    async def _second_reminder(self, renewal: RenewalRecord, now: datetime) -> int:
        async with self._uow() as uow:
            account = await uow.accounts.get(renewal.account_id, for_update=True)
            if account is None or not account.renewal_reminders:
                return 0
            if not await uow.billing.mark_second_reminder(renewal.id, now):
                return 0
            await self._mail(uow, account, renewal.invoice_id, now, first=False)
            await uow.commit()
        return 1

    async def _mail(self, uow: BillingUnit, account: Account, invoice_id: str, now: datetime,
                    first: bool) -> None:
        assert self._reminders is not None and account.paid_until is not None
        try:
            email = (await uow.accounts.profile(account.id)).email
        except NotFound:
            return
        voice = self._reminders.catalogs.voice(account.language)
        ends = voice.when(account.paid_until)
        subject = voice.gettext(REMINDER_SUBJECT if first else SECOND_REMINDER_SUBJECT,
                                ends=ends)
        body = voice.gettext(REMINDER_BODY, plan=account.plan, ends=ends,
                             link=self._reminders.pay_url + invoice_id,
                             account_url=self._reminders.account_url)
        await uow.billing.queue_mail(email, subject, body, now)

    # -- the customer's side ----------------------------------------------------------
    async def view(self, account_id: str) -> RenewalView:
        async with self._reader() as uow:
            account = await uow.accounts.get(account_id)
            if account is None or account.deleted:
                raise NotFound("account")
            latest = await uow.billing.latest_renewal(account_id)
        return self._view(account, latest)

    def _view(self, account: Account, latest: RenewalRecord | None) -> RenewalView:
        current = (latest if latest is not None and account.paid_until is not None
                   and latest.period_end == account.paid_until else None)
        at = (account.paid_until - self._policy.renewal_lead
              if account.paid_until is not None and account.plan is not None else None)
        return RenewalView(account, current, at)

    async def choose(self, account_id: str, plan: str | None = None, coin: str | None = None,
                     reminders: bool | None = None) -> RenewalView:
        """The customer's choice for the next renewals: plan, coin, reminders on or off.
        When this period's renewal invoice is still unpaid and the plan or coin changed,
        a new one replaces it and the old one expires at once (see `_replace`)."""
        if plan is not None:
            self._invoices.plan(plan)
            if plan not in self._prepaid.periods:
                raise InvalidInput("plan", f"plan {plan!r} has no period to renew")
        if coin is not None and coin not in self._invoices.coins():
            raise InvalidInput("coin", f"must be one of {', '.join(self._invoices.coins())}")
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id, for_update=True)
            if account is None or account.deleted:
                raise NotFound("account")
            before = (account.plan, account.renewal_coin)
            account.choose_renewal(plan, coin, reminders)
            await uow.accounts.save(account)
            latest = await uow.billing.latest_renewal(account_id)
            await uow.commit()
        view = self._view(account, latest)
        current = view.next_invoice
        if (current is not None and current.invoice_status == Status.NEW
                and (account.plan, account.renewal_coin) != before
                and await self._replaced(account_id, current)
                < self._policy.max_renewal_replacements):
            await self._replace(account, current)
            return await self.view(account_id)
        return view

    async def _replaced(self, account_id: str, renewal: RenewalRecord) -> int:
        """How often this period's renewal invoice was replaced: each replacement left an
        expired plan invoice created since the renewal was (the first one a little before
        its record: the rate is fetched first)."""
        limit = self._policy.max_renewal_replacements + 2
        since = renewal.created_at - timedelta(minutes=1)
        async with self._reader() as uow:
            expired = await uow.invoices.page(account_id, Status.EXPIRED, None, limit)
        return sum(1 for r in expired if r.invoice.created_at >= since
                   and "plan" in r.invoice.metadata)

    async def _replace(self, seen: Account, renewal: RenewalRecord) -> None:
        assert seen.plan is not None and seen.renewal_coin is not None
        plan = self._invoices.plan(seen.plan)
        price = plan.price_in(seen.currency)
        invoice = await self._invoices.prepare(
            seen.id, price, self._coin(seen.renewal_coin), {"plan": plan.name},
            valid_until=renewal.period_end)
        async with self._uow() as uow:
            # The invoice before the account, in the order settlement locks them.
            old = await uow.invoices.get(renewal.invoice_id, for_update=True)
            account = await uow.accounts.get(seen.id, for_update=True)
            if account is None or account.paid_until != renewal.period_end:
                return
            # The replaced invoice expires now: each would otherwise stay payable at its
            # own locked rate on its own address (a free choice of rates, and addresses
            # burnt without limit past the open-invoice cap). One already paid to, even
            # unconfirmed, stays and is not replaced.
            paid = await uow.payments.for_invoices([renewal.invoice_id])
            if old is None or paid.get(renewal.invoice_id) or not old.withdraw(self._clock()):
                return
            await uow.invoices.save(old)
            await self._invoices.insert(uow, invoice)
            await uow.billing.replace_renewal_invoice(renewal.id, invoice.id)
            await uow.commit()
