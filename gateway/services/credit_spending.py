"""Credit is spent first (docs/credit.md "Spending"): a plan period bought or renewed
takes the account's credit before any invoice. Credit covering the price buys the period
with no invoice (one SPENT entry named by the period it extends); credit covering part
is taken when the invoice for the rest is created (named by that invoice), and comes back
if that invoice expires unpaid (`CreditService`). Always under the account's row lock:
two instances never spend the same credit, and spending never takes the balance below
zero."""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gateway.domain.accounts import Account
from gateway.domain.billing import Extension, Period, extend
from gateway.domain.credit import CreditEntry, CreditKind, split_price
from gateway.domain.crediting import period_spend_cause
from gateway.domain.errors import InvalidInput
from gateway.domain.money import Fiat
from gateway.services.errors import NotFound
from gateway.services.invoices import (
    CREDIT_APPLIED,
    IdempotencyRequest,
    InvoiceService,
    InvoiceView,
    Plan,
)
from gateway.services.ports import BillingUnit, Clock


@dataclass(frozen=True)
class Bought:
    """A period bought from credit alone: no invoice."""

    account: Account
    entry: CreditEntry
    extension: Extension | None  # None: a replay (the same Idempotency-Key again)


async def buy_period(uow: BillingUnit, account: Account, plan: str, period: Period,
                     coin: str, price: Fiat, now: datetime,
                     cause: str | None = None) -> Bought | None:
    """With `account` locked: the next period from credit alone, when the balance covers
    the price (None otherwise, or when this period was bought already). `cause`: the
    entry's name (default: the period it extends)."""
    if account.deleted or price.minor <= 0:
        return None
    if await uow.credit.balance(account.id, price.currency) < price.minor:
        return None
    extension = extend(account.paid_until, now, period, 1, account.paid_since)
    entry = CreditEntry(
        account.id, CreditKind.SPENT, -price.minor, price.currency,
        cause or period_spend_cause(plan, account.paid_until), now,
        note=f"{plan}: {extension.starts_at:%Y-%m-%d %H:%M} to "
             f"{extension.ends_at:%Y-%m-%d %H:%M} UTC")
    if not await uow.credit.add(entry):
        return None
    account.credit(None, plan, coin, extension, {"plan": plan}, now, via="credit")
    await uow.accounts.save(account)
    return Bought(account, entry, extension)


def reduced(price: Fiat, balance: int) -> tuple[Fiat, Fiat]:
    """(credit used, left to invoice) in the price's currency."""
    used, rest = split_price(price.minor, balance)
    return Fiat(used, price.currency), Fiat(rest, price.currency)


class PlanPurchases:
    """A customer buying a plan (portal /account/buy, POST /v1/me/invoices)."""

    def __init__(self, uow: Callable[[], BillingUnit], invoices: InvoiceService,
                 periods: dict[str, Period], clock: Clock,
                 reader: Callable[[], BillingUnit] | None = None) -> None:
        self._uow = uow
        self._reader = reader or uow
        self._invoices = invoices
        self._periods = periods  # plan -> its period (plans with none are not bought)
        self._clock = clock

    async def buy(self, account_id: str, plan: Plan, coin: str,
                  idem: IdempotencyRequest | None = None
                  ) -> Bought | tuple[InvoiceView, bool]:
        cause = _idempotent_cause(idem)
        async with self._reader() as uow:
            account = await uow.accounts.get(account_id)
            if account is None or account.deleted:
                raise NotFound("account")
            balance = await uow.credit.balance(
                account_id, plan.price_in(account.currency).currency)
            replay = await uow.credit.find(account_id, cause) if cause else None
        if replay is not None:  # this request bought the period already
            return Bought(account, replay, None)
        price = plan.price_in(account.currency)
        period = self._periods.get(plan.name)
        usable = balance if price.currency == (account.currency or price.currency) else 0
        if coin not in self._invoices.coins():
            known = ", ".join(self._invoices.coins()) or "none"
            raise InvalidInput("coin", f"{coin!r} is not accepted here; accepted: {known}")
        if usable >= price.minor and period is not None:
            bought = await self._from_credit(account_id, plan.name, period, coin, price,
                                             cause)
            if bought is not None:
                return bought
        if usable > 0:
            used, rest = reduced(price, usable)
            if rest.minor > 0 and used.minor > 0:
                return await self._invoices.create_once(
                    account_id, rest, coin,
                    {"plan": plan.name, CREDIT_APPLIED: used.as_decimal_string()}, idem,
                    for_plan=plan, credit_used=used)
        return await self._invoices.create_once(
            account_id, price, coin, {"plan": plan.name}, idem, for_plan=plan)

    async def _from_credit(self, account_id: str, plan: str, period: Period, coin: str,
                           price: Fiat, cause: str | None) -> Bought | None:
        now = self._clock()
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id, for_update=True)
            if account is None:
                raise NotFound("account")
            bought = await buy_period(uow, account, plan, period, coin, price, now, cause)
            if bought is not None:
                await uow.commit()
            return bought


def _idempotent_cause(idem: IdempotencyRequest | None) -> str | None:
    """A period bought from credit under an Idempotency-Key is named by the key: the same
    request again finds it (and buys nothing more)."""
    if idem is None:
        return None
    digest = hashlib.sha256(f"{idem.scope}\n{idem.key}".encode()).hexdigest()[:32]
    return f"spend:request:{digest}"
