"""Account credit (docs/credit.md): the periodic task that credits what invoices could not
use, takes back what reverted, gives back credit spent on invoices that expired unpaid,
and expires old credit; and what the customer, the API and staff read of the ledger.

Every write happens under the account's row lock (after the invoice's, the order in
which settlement locks them), and every entry names its cause (unique per account): two
instances, a restart or a retried run write each entry once. The median rate is fetched
before the transaction opens: no lock is held across I/O."""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from gateway.domain.accounts import Account
from gateway.domain.credit import (
    AdjustmentReason,
    Conversion,
    CreditEntry,
    CreditKind,
    InsufficientCredit,
    to_credit,
)
from gateway.domain.crediting import (
    CreditRules,
    Owed,
    can_still_settle,
    lost,
    owed,
    reverted_cause,
    spend_cause,
    unspend_cause,
    used_by_settlement,
)
from gateway.domain.errors import InvalidInput
from gateway.domain.invoices import (
    DEFAULT_BLOCK_TIME_TOLERANCE,
    Invoice,
    ObservedPayment,
    Status,
)
from gateway.logs import failure
from gateway.services.chain_events import observed
from gateway.services.errors import NotFound
from gateway.services.ports import Clock, CreditUnit, RateProvider

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CreditPolicy:
    rules: CreditRules = field(default_factory=CreditRules)
    expires_after: timedelta | None = None  # None: credit never expires
    # Invoices that expired longer ago than this are no longer looked at (a payment to
    # one is left to staff): bounds each run's search.
    lookback: timedelta = timedelta(days=30)
    block_time_tolerance: timedelta = DEFAULT_BLOCK_TIME_TOLERANCE


@dataclass(frozen=True)
class CreditView:
    balance: int  # minor units of `currency`
    currency: str | None
    entries: list[CreditEntry] = field(default_factory=list)  # newest first


def credit_currency(account: Account, fallback: str) -> str:
    """Credit is kept in the account's currency (the invoice's when it has none)."""
    return account.currency or fallback


class CreditService:
    def __init__(self, uow: Callable[[], CreditUnit], *, rates: RateProvider, clock: Clock,
                 policy: CreditPolicy, feed_of: Callable[[str], str] = lambda c: c,
                 reader: Callable[[], CreditUnit] | None = None) -> None:
        self._uow = uow
        self._reader = reader or uow
        self._rates = rates
        self._clock = clock
        self._policy = policy
        self._feed_of = feed_of

    # -- reads ---------------------------------------------------------------------------
    async def view(self, account_id: str, limit: int = 100,
                   before_id: int | None = None) -> CreditView:
        if not 1 <= limit <= 500:
            raise InvalidInput("limit", "must be between 1 and 500")
        async with self._reader() as uow:
            account = await uow.accounts.get(account_id)
            if account is None:
                raise NotFound("account")
            entries = await uow.credit.entries(account_id, limit, before_id)
            currency = account.currency
            if currency is None:  # no currency chosen: the one its credit was kept in
                latest = entries or await uow.credit.entries(account_id, 1)
                currency = latest[0].currency if latest else None
            balance = await uow.credit.balance(account_id, currency) if currency else 0
            return CreditView(balance, currency, entries)

    async def balance(self, account_id: str) -> int:
        async with self._reader() as uow:
            return await uow.credit.balance(account_id)

    async def between(self, start: datetime, end: datetime) -> list[CreditEntry]:
        async with self._reader() as uow:
            return await uow.credit.between(start, end)

    async def adjust(self, account_id: str, amount: int, reason: AdjustmentReason,
                     note: str | None, staff_id: str | None, request_id: str) -> CreditEntry:
        """Staff move a balance by hand, with a typed reason (and their words); once per
        `request_id` (a retried form writes one entry). A debit never takes the balance
        below zero. Returns the entry (the one written before, for a retry)."""
        if amount == 0:
            raise InvalidInput("amount", "an adjustment moves the balance")
        cause = f"adjust:{request_id}"
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id, for_update=True)
            if account is None or account.deleted:
                raise NotFound("account")
            earlier = await uow.credit.find(account_id, cause)
            if earlier is not None:
                return earlier
            latest = await uow.credit.entries(account_id, 1)
            currency = account.currency or (latest[0].currency if latest else None)
            if currency is None:
                raise InvalidInput("account", "has no currency to keep credit in")
            balance = await uow.credit.balance(account_id, currency)
            if balance + amount < 0:
                raise InsufficientCredit(-amount, balance)
            entry = CreditEntry(account_id, CreditKind.ADJUSTMENT, amount, currency, cause,
                                self._clock(), reason=reason, note=note, staff_id=staff_id)
            await uow.credit.add(entry)
            if amount > 0:
                account.credited(entry, balance + amount)
                await uow.accounts.save(account)
            await uow.commit()
        log.info("credit: account %s adjusted by staff (%s)", account_id, reason.value)
        return entry

    # -- the periodic task ---------------------------------------------------------------
    async def run(self) -> int:
        """One round; returns how many entries it wrote."""
        now = self._clock()
        async with self._reader() as uow:
            due = await uow.credit.candidates(now - self._policy.lookback, now)
        written = 0
        for invoice_id in due:
            try:
                written += await self.settle_invoice(invoice_id)
            except Exception as exc:  # a rate source down: tried again next round
                log.warning("credit: invoice %s not credited yet: %s", invoice_id,
                            failure(exc))
        if self._policy.expires_after is not None:
            written += await self._expire(now - self._policy.expires_after)
        return written

    async def settle_invoice(self, invoice_id: str) -> int:
        """Writes what `invoice_id` owes its account (or takes back); the entries written."""
        now = self._clock()
        rate = await self._median_if_needed(invoice_id, now)
        async with self._uow() as uow:
            invoice = await uow.invoices.get(invoice_id, for_update=True)
            if invoice is None:
                return 0
            account = await uow.accounts.get(invoice.account_id, for_update=True)
            if account is None:
                return 0
            paid = await uow.payments.for_invoices([invoice_id])
            tip = await uow.cursors.get(self._feed_of(invoice.coin))
            payments = observed(paid.get(invoice_id, []), tip, now)
            bought = await uow.billing.paid_period(invoice_id)
            writer = _Writer(uow, account, invoice, await uow.credit.balance(
                account.id, credit_currency(account, invoice.price.currency)), now)
            for item in owed(invoice, payments, now, self._policy.rules,
                             bought.periods if bought else 1,
                             self._policy.block_time_tolerance):
                await writer.owed(item, rate)
            await writer.reverted(payments)
            if invoice.status is not Status.SETTLED and not can_still_settle(invoice, now):
                await writer.unspend()
            if writer.written:
                if account.events:
                    await uow.accounts.save(account)
                await uow.commit()
            return writer.written

    async def _median_if_needed(self, invoice_id: str,
                                now: datetime) -> tuple[Decimal, str] | None:
        async with self._reader() as uow:
            invoice = await uow.invoices.get(invoice_id)
            account = None if invoice is None else await uow.accounts.get(invoice.account_id)
            if invoice is None or account is None:
                return None
            paid = await uow.payments.for_invoices([invoice_id])
            tip = await uow.cursors.get(self._feed_of(invoice.coin))
        payments = observed(paid.get(invoice_id, []), tip, now)
        currency = credit_currency(account, invoice.price.currency)
        items = owed(invoice, payments, now, self._policy.rules)
        if any(not o.at_locked_rate for o in items) or (
                items and currency != invoice.price.currency):
            return await self._rates.rate(invoice.coin, currency)
        return None

    async def _expire(self, cutoff: datetime) -> int:
        async with self._reader() as uow:
            accounts = await uow.credit.aged(cutoff)
        written = 0
        for account_id in accounts:
            async with self._uow() as uow:
                account = await uow.accounts.get(account_id, for_update=True)
                if account is None:
                    continue
                entries = await uow.credit.entries(account_id, limit=100_000)
                entry = expiry(entries, cutoff, self._clock())
                if entry is not None and await uow.credit.add(entry):
                    await uow.commit()
                    written += 1
        return written


def expiry(entries: list[CreditEntry], cutoff: datetime, now: datetime) -> CreditEntry | None:
    """The EXPIRED entry due: credit written before `cutoff` that is still unspent, spends
    (and earlier expiries, refunds) taking the oldest credit first. Named by the newest
    entry it expires, so each step is written once."""
    old = [e for e in entries if e.amount > 0 and e.created_at < cutoff]
    if not old:
        return None
    left = sum(e.amount for e in old) + sum(e.amount for e in entries if e.amount < 0)
    if left <= 0:
        return None
    newest = max(old, key=lambda e: e.id or 0)
    return CreditEntry(newest.account_id, CreditKind.EXPIRED, -left, newest.currency,
                       f"expire:{newest.id}", now,
                       note=f"credit older than {cutoff:%Y-%m-%d %H:%M} UTC")


class _Writer:
    """The entries of one invoice, in its transaction, the account locked."""

    def __init__(self, uow: CreditUnit, account: Account, invoice: Invoice, balance: int,
                 now: datetime) -> None:
        self._uow, self._account, self._invoice = uow, account, invoice
        self._balance, self._now = balance, now
        self._currency = credit_currency(account, invoice.price.currency)
        self.written = 0

    async def _add(self, entry: CreditEntry) -> bool:
        if not await self._uow.credit.add(entry):
            return False
        self._balance += entry.amount
        self.written += 1
        if entry.amount > 0 and not self._account.deleted:
            self._account.credited(entry, self._balance)
        return True

    async def owed(self, item: Owed, median: tuple[Decimal, str] | None) -> None:
        invoice = self._invoice
        if await self._uow.credit.find(self._account.id, item.cause) is not None:
            return
        locked = item.at_locked_rate and self._currency == invoice.price.currency
        if locked:
            rate, source = Decimal(invoice.rate.value), "locked"
        elif median is not None:
            rate, source = median
        else:
            return  # the rate is fetched before the next try
        amount = to_credit(item.crypto_amount, invoice.terms.decimals, rate, self._currency)
        if amount <= 0:
            return  # worth less than a cent: nothing to credit
        await self._add(CreditEntry(
            self._account.id, item.kind, amount, self._currency, item.cause, self._now,
            invoice_id=invoice.id, conversion=Conversion(
                invoice.coin, item.txid, item.index, item.crypto_amount,
                invoice.terms.decimals, _plain(rate), source)))

    async def reverted(self, payments: list[ObservedPayment]) -> None:
        """A credited payment gone for good, or one that turned out to settle its invoice:
        its credit is taken back (the balance may go below zero by this correction
        alone)."""
        for cause in lost(self._invoice, payments) + used_by_settlement(self._invoice,
                                                                        payments):
            credited = await self._uow.credit.find(self._account.id, cause)
            if credited is None or credited.amount <= 0:
                continue
            if await self._add(CreditEntry(
                    self._account.id, CreditKind.REVERTED, -credited.amount,
                    credited.currency, reverted_cause(cause), self._now,
                    invoice_id=self._invoice.id, conversion=credited.conversion)):
                log.warning("credit: a payment of invoice %s credited to account %s was "
                            "reverted, or settled the invoice after all; its credit is "
                            "taken back", self._invoice.id, self._account.id)

    async def unspend(self) -> None:
        """Credit spent on this invoice comes back: it expired (or went invalid) unpaid."""
        spent = await self._uow.credit.find(self._account.id, spend_cause(self._invoice.id))
        if spent is None or spent.amount >= 0:
            return
        await self._add(CreditEntry(
            self._account.id, CreditKind.SPEND_RETURNED, -spent.amount, spent.currency,
            unspend_cause(self._invoice.id), self._now, invoice_id=self._invoice.id))


def _plain(rate: Decimal) -> str:
    return format(rate.normalize(), "f")
