from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from chains.base import BlockRef, ChainError, Destination, NetworkFacts, describe_failure
from gateway.domain.credit import CreditEntry, CreditKind, InsufficientCredit
from gateway.domain.crediting import spend_cause
from gateway.domain.errors import InvalidInput
from gateway.domain.invoice_metadata import metadata_problem
from gateway.domain.invoices import Invoice, InvoiceTerms, LockedRate, Status
from gateway.domain.money import Fiat, fiat_to_base_units
from gateway.domain.payments import locked_until
from gateway.domain.states import IdempotencyState
from gateway.services.errors import Conflict, NotFound, ServiceUnavailable, TooManyRequests
from gateway.services.ids import new_id
from gateway.services.ports import (
    ChainDirectory,
    Clock,
    InvoiceRecord,
    InvoicesUnit,
    PaymentRecord,
    RateProvider,
)

log = logging.getLogger(__name__)

CREDIT_APPLIED = "credit_applied"  # invoice metadata: the credit taken for it ("3.50")


@dataclass(frozen=True)
class InvoicePolicy:
    expiry: timedelta = timedelta(minutes=15)
    monitoring: timedelta = timedelta(hours=24)
    tolerance_basis_points: int = 0
    accept_late_payments: bool = False
    # Invoices a customer may have waiting for payment at once (POST /v1/me/invoices):
    # every one holds a fresh address, and unpaid ones widen the wallet's gap.
    max_open_per_account: int = 5


@dataclass(frozen=True)
class InvoiceView:
    """An invoice as read, with the chain tip its payments' confirmations count from."""

    record: InvoiceRecord
    tip: BlockRef | None
    # True when a customer asked for a plan and got their open invoice for it again.
    reused: bool = False
    now: datetime | None = None  # when it was read: time locks are judged against it

    def confirmations(self, payment: PaymentRecord) -> int:
        return payment.confirmations(self.tip)

    def locked_until(self, payment: PaymentRecord) -> dict[str, object] | None:
        """The payment's lock while it holds it from counting (None otherwise)."""
        if payment.lock is None:
            return None
        return locked_until(payment.lock.height, payment.lock.time,
                            None if self.tip is None else self.tip.height,
                            self.now or datetime.now(UTC))


@dataclass(frozen=True)
class IdempotencyRequest:
    scope: str  # whose keys these are: an API key id or an account id
    key: str
    fingerprint: str  # of the request body; the same key with another body is refused


@dataclass(frozen=True)
class Plan:
    name: str
    price: Fiat
    description: str = ""
    prices: dict[str, Fiat] = field(default_factory=dict)  # by currency; `price` included

    def price_in(self, currency: str | None) -> Fiat:
        """The plan's price in the customer's currency when it has one, else its own."""
        return self.prices.get(currency or "", self.price)


@dataclass(frozen=True)
class CoinRules:
    confirmations: int


# A request holding a key this long without finishing is presumed dead; another may take
# the key over. Longer than any rate fetch plus invoice creation.
IDEMPOTENCY_LEASE = timedelta(seconds=60)


class InvoiceService:
    def __init__(
        self,
        uow: Callable[[], InvoicesUnit],
        *,
        chains: ChainDirectory,
        rates: RateProvider,
        clock: Clock,
        policy: InvoicePolicy,
        coin_rules: dict[str, CoinRules],
        plans: dict[str, Plan] | None = None,
        reader: Callable[[], InvoicesUnit] | None = None,
    ) -> None:
        self._uow = uow
        # For reads (checkout page, event streams, lists): a unit of work that only reads
        # and so never waits for a writer.
        self._reader = reader or uow
        self._chains = chains
        self._rates = rates
        self._clock = clock
        self._policy = policy
        self._rules = coin_rules
        self._plans = plans or {}

    def plans(self) -> list[Plan]:
        return [self._plans[name] for name in sorted(self._plans)]

    def coins(self) -> tuple[str, ...]:
        return self._chains.coins()

    async def pay_again(self, account_id: str, invoice_id: str) -> InvoiceView:
        """A new invoice for what an expired one asked (same price, coin and metadata) at
        today's rate and on a fresh address. Only the invoice's own customer may ask."""
        old = (await self.read(invoice_id)).record.invoice
        if old.account_id != account_id:
            raise NotFound("invoice")
        if old.status is not Status.EXPIRED:
            raise Conflict("only an expired invoice can be paid again")
        # Under the same rules as buying a plan: an open invoice for the same thing is
        # shown again, and the cap on open invoices holds (no address burnt per click).
        plan = Plan(str(old.metadata.get("plan", "")), old.price)
        return await self.create(account_id, old.price, old.coin, old.metadata, for_plan=plan)

    def plan(self, name: str) -> Plan:
        plan = self._plans.get(name)
        if plan is None:
            known = ", ".join(sorted(self._plans)) or "none"
            raise InvalidInput("plan", f"no plan {name!r}; plans: {known}")
        return plan

    async def create_once(
        self, account_id: str, price: Fiat, coin: str, metadata: dict[str, object] | None,
        idem: IdempotencyRequest | None, for_plan: Plan | None = None,
        credit_used: Fiat | None = None,
    ) -> tuple[InvoiceView, bool]:
        """`create`, honouring an Idempotency-Key: the same key and body give the first
        invoice again (second value True); another body is refused; a retry while the first
        request still runs is a conflict. `for_plan`: a customer buying a plan (see
        `create`)."""
        if idem is None:
            return await self.create(account_id, price, coin, metadata,
                                     for_plan=for_plan, credit_used=credit_used), False
        owner = new_id("idm_")
        now = self._clock()
        async with self._uow() as uow:
            existing = await uow.idempotency.claim(
                idem.scope, idem.key, idem.fingerprint, owner, now)
            if existing is not None:
                if existing.fingerprint != idem.fingerprint:
                    raise InvalidInput("Idempotency-Key",
                                       "was already used with a different request body")
                if existing.state == IdempotencyState.DONE and existing.invoice_id is not None:
                    replay = existing.invoice_id
                elif now - existing.updated_at < IDEMPOTENCY_LEASE:
                    raise Conflict("a request with this Idempotency-Key is still in progress; "
                                   "retry later")
                elif not await uow.idempotency.take_over(
                        idem.scope, idem.key, existing.owner, owner, now):
                    raise Conflict("a request with this Idempotency-Key is in progress")
                else:
                    replay = None
            else:
                replay = None
            await uow.commit()
        if replay is not None:
            return await self.read(replay), True
        try:
            return await self.create(account_id, price, coin, metadata, (idem, owner),
                                     for_plan=for_plan, credit_used=credit_used), False
        except BaseException:
            async with self._uow() as uow:
                await uow.idempotency.release(idem.scope, idem.key, owner)
                await uow.commit()
            raise

    async def create(
        self, account_id: str, price: Fiat, coin: str, metadata: dict[str, object] | None = None,
        _idem: tuple[IdempotencyRequest, str] | None = None, *, for_plan: Plan | None = None,
        credit_used: Fiat | None = None,
    ) -> InvoiceView:
        """A new invoice with a fresh address. With `for_plan` (a customer buying a plan)
        the customer's open invoice for the same plan, price and coin is returned again
        instead (`reused`), and no more than `max_open_per_account` may be open at once:
        nobody can burn addresses (and push the wallet's gap) by asking again and again.
        `credit_used`: the account's credit that pays the rest of the plan's price (taken
        in this transaction, docs/credit.md)."""
        problem = metadata_problem(metadata or {})
        if problem is not None:
            raise InvalidInput("metadata", problem)
        if coin not in self._chains.coins():
            known = ", ".join(self._chains.coins()) or "none"
            raise InvalidInput("coin", f"{coin!r} is not accepted here; accepted: {known}")
        if for_plan is not None:
            # Checked before the rate is fetched, and again under the lock below.
            async with self._reader() as uow:
                open_now = await uow.invoices.open_for_account(account_id, self._clock())
            try:
                self._check_open(open_now, for_plan, coin)
            except _Reuse as reuse:
                return await self._reuse(reuse.invoice_id, _idem)
        # The rate is fetched before the transaction opens: no lock is held across I/O.
        invoice = await self.prepare(account_id, price, coin, metadata)
        now = invoice.created_at
        try:
            # One short transaction that returns what it wrote (no read-back).
            async with self._uow() as uow:
                check = None
                if for_plan is not None:
                    async def check() -> None:
                        self._check_open(await uow.invoices.open_for_account(account_id, now),
                                         for_plan, coin)
                destination, uri = await self.insert(uow, invoice, check)
                if credit_used is not None:
                    await take_credit(uow, invoice, credit_used, now)
                if _idem is not None:
                    idem, owner = _idem
                    # In the invoice's own transaction: a crash leaves neither or both.
                    if not await uow.idempotency.complete(idem.scope, idem.key, owner,
                                                          invoice.id, now):
                        raise Conflict("this Idempotency-Key was taken over by another "
                                       "request")
                tip = await uow.cursors.get(self._chains.feed(coin))
                await uow.commit()
        except _Reuse as reuse:
            return await self._reuse(reuse.invoice_id, _idem)
        return InvoiceView(InvoiceRecord(invoice, destination.address, uri, ()), tip,
                           now=self._clock())

    async def prepare(self, account_id: str, price: Fiat, coin: str,
                      metadata: dict[str, object] | None = None,
                      valid_until: datetime | None = None) -> Invoice:
        """A new invoice at the rate of this moment (fetched here: call it before any
        transaction opens), not yet stored. `valid_until`: expires then instead of after
        the usual expiry (never sooner); monitoring goes on for the usual window after."""
        if coin not in self._chains.coins():
            known = ", ".join(self._chains.coins()) or "none"
            raise InvalidInput("coin", f"{coin!r} is not accepted here; accepted: {known}")
        rate, source = await self._rates.rate(coin, price.currency)
        now = self._clock()
        decimals = self._chains.decimals(coin)
        expires_at = now + self._policy.expiry
        if valid_until is not None and valid_until > expires_at:
            expires_at = valid_until
        terms = InvoiceTerms(
            amount_due=fiat_to_base_units(price, rate, decimals),
            decimals=decimals,
            confirmations_required=self._rules[coin].confirmations,
            expires_at=expires_at,
            monitoring_until=expires_at - self._policy.expiry + self._policy.monitoring,
            tolerance_basis_points=self._policy.tolerance_basis_points,
            accept_late_payments=self._policy.accept_late_payments,
        )
        invoice = Invoice(
            id=new_id("inv_"),
            account_id=account_id,
            coin=coin,
            price=price,
            rate=LockedRate(_plain(rate), source, now),
            terms=terms,
            created_at=now,
            metadata=dict(metadata or {}),
        )
        invoice.created()
        return invoice

    async def insert(self, uow: InvoicesUnit, invoice: Invoice,
                     check: Callable[[], Awaitable[None]] | None = None
                     ) -> tuple[Destination, str]:
        """Store a prepared invoice on a fresh address, in the caller's transaction; returns
        the address and payment URI. With `check` (a customer buying a plan) the account's
        row is locked to commit and `check` runs under that lock, before an index is taken:
        two requests racing past a first check queue there and see each other."""
        account = await uow.accounts.get(invoice.account_id, for_update=check is not None)
        if account is None:
            raise InvalidInput("account_id", f"no account {invoice.account_id!r}")
        if account.deleted:
            raise InvalidInput("account_id", f"account {invoice.account_id!r} was deleted")
        if check is not None:
            await check()
        coin = invoice.coin
        space = self._chains.address_space(coin)
        # Never handed out twice; on PostgreSQL taken in its own short transaction (no lock
        # held to this one's commit), so a creation that fails after it leaves an unused
        # index (a gap the watched set tolerates).
        [index] = await uow.invoices.allocate(space)
        try:
            [destination] = await self._chains.allocate(coin, [index])
        except ChainError as exc:  # a Monero wallet down, or catching up after a restore
            log.warning("%s: no address handed out: %s", coin, describe_failure(exc))
            raise ServiceUnavailable(f"{coin} payments cannot take new invoices right now "
                                     "(the node is unavailable); try again shortly") from None
        uri = self._chains.payment_uri(coin, destination, invoice.terms.amount_due)
        await uow.invoices.add(invoice, space, destination, uri)
        return destination, uri

    def _check_open(self, open_now: list[Invoice], plan: Plan, coin: str) -> None:
        """Raises `_Reuse` for an open invoice of this plan, price and coin, or
        `TooManyRequests` when the account has its maximum of open invoices."""
        for invoice in open_now:
            if (invoice.coin == coin and invoice.metadata.get("plan", "") == plan.name
                    and (invoice.price == plan.price_in(invoice.price.currency)
                         or CREDIT_APPLIED in invoice.metadata)):
                raise _Reuse(invoice.id)
        limit = self._policy.max_open_per_account
        if len(open_now) >= limit:
            first_expiry = min(i.terms.expires_at for i in open_now)
            wait = max((first_expiry - self._clock()).total_seconds(), 1)
            raise TooManyRequests(
                f"you have {len(open_now)} unpaid invoices open (at most {limit}): pay one, "
                f"or wait until one expires (in {int(wait)} s)", wait)

    async def _reuse(self, invoice_id: str, idem: tuple[IdempotencyRequest, str] | None
                     ) -> InvoiceView:
        if idem is not None:
            request, owner = idem
            async with self._uow() as uow:
                if not await uow.idempotency.complete(request.scope, request.key, owner,
                                                      invoice_id, self._clock()):
                    raise Conflict("this Idempotency-Key was taken over by another request")
                await uow.commit()
        view = await self.read(invoice_id)
        return InvoiceView(view.record, view.tip, reused=True, now=view.now)

    async def read(self, invoice_id: str) -> InvoiceView:
        """The invoice, its payments and its feed's tip: one statement."""
        feeds = {c: self._chains.feed(c) for c in self._chains.coins()}
        async with self._reader() as uow:
            found = await uow.invoices.read_with_tip(invoice_id, feeds)
        if found is None:
            raise NotFound("invoice")
        record, tip = found
        return InvoiceView(record, tip, now=self._clock())

    async def list(
        self,
        account_id: str | None = None,
        status: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[InvoiceView]:
        if status is not None and status not in {s.value for s in Status}:
            raise InvalidInput("status", f"must be one of {', '.join(s.value for s in Status)}")
        if not 1 <= limit <= 200:
            raise InvalidInput("limit", "must be between 1 and 200")
        async with self._reader() as uow:
            wanted = None if status is None else Status(status)
            records = await uow.invoices.page(account_id, wanted, after, limit)
            tips = {c: await self._tip(uow, c) for c in {r.invoice.coin for r in records}}
        now = self._clock()
        return [InvoiceView(r, tips[r.invoice.coin], now=now) for r in records]

    def network(self, coin: str) -> NetworkFacts | None:
        """What the customer is told of the network the coin is paid on (None: its family
        says nothing, or it is no longer configured)."""
        return self._chains.network_facts(coin) if coin in self._chains.coins() else None

    def feed(self, coin: str) -> str:
        """The feed whose tip counts the coin's confirmations (the coin itself when it is
        no longer configured)."""
        return self._chains.feed(coin) if coin in self._chains.coins() else coin

    async def _tip(self, uow: InvoicesUnit, coin: str) -> BlockRef | None:
        """How far the coin's feed has been processed (None for a coin no longer
        configured: its payments then show no confirmations)."""
        if coin not in self._chains.coins():
            return await uow.cursors.get(coin)
        return await uow.cursors.get(self._chains.feed(coin))


async def take_credit(uow: InvoicesUnit, invoice: Invoice, used: Fiat,
                      now: datetime) -> None:
    """In the invoice's own transaction, the account locked: the credit that pays the rest
    of its price. Raises InsufficientCredit when the balance fell meanwhile (another
    instance spent it): the invoice is then not created."""
    available = await uow.credit.balance(invoice.account_id, used.currency)
    if available < used.minor:
        raise InsufficientCredit(used.minor, available)
    await uow.credit.add(CreditEntry(
        invoice.account_id, CreditKind.SPENT, -used.minor, used.currency,
        spend_cause(invoice.id), now, invoice_id=invoice.id,
        note=f"part of the price of invoice {invoice.id}"))


class _Reuse(Exception):  # control flow only: never leaves this module
    def __init__(self, invoice_id: str) -> None:
        super().__init__(invoice_id)
        self.invoice_id = invoice_id


def _plain(rate: Decimal) -> str:
    return format(rate.normalize(), "f")
