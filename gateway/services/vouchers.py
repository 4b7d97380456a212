"""Vouchers (docs/vouchers.md): batches of prepaid codes that staff sell through resellers,
and a customer redeeming one into their account credit (or straight into plan time).

A code is shown once, when its batch is made, and kept only as a keyed hash. Redeeming
checks the code's own check character first (a typo is answered without any lookup),
then takes the account's row lock and makes one conditional update of the code's row:
of two instances redeeming the same code at once, exactly one wins. A code that does not
exist, was redeemed, revoked or expired gets one answer, after the same work (one hash,
one query), and counts as a failure against the account and the client network
(gateway.domain.throttle), so guessing is hopeless (docs/vouchers.md has the sums)."""

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from gateway.domain.accounts import Account
from gateway.domain.billing import Period
from gateway.domain.credit import CreditEntry, CreditKind
from gateway.domain.errors import N_, InvalidInput
from gateway.domain.money import Fiat
from gateway.domain.throttle import (
    ThrottlePolicy,
    ThrottleState,
    after_failure,
    client_network,
    retry_after,
)
from gateway.domain.vouchers import (
    VoucherBatch,
    generate,
    hash_input,
    normalise,
    voucher_cause,
)
from gateway.services.credit_spending import buy_period
from gateway.services.errors import Conflict, NotFound, TooManyRequests
from gateway.services.ids import new_id
from gateway.services.invoices import Plan
from gateway.services.ports import Clock, VouchersUnit
from gateway.services.ports.vouchers import NewVoucher, Redeemed

log = logging.getLogger(__name__)

# One answer for a code that does not exist, was redeemed, revoked or expired.
REFUSED = ("this code cannot be redeemed: it is not a valid voucher, or it was used "
           "already, withdrawn or has expired")


class VoucherRefused(InvalidInput):
    def __init__(self) -> None:
        super().__init__("code", REFUSED)


@dataclass(frozen=True)
class VoucherPolicy:
    per_account: ThrottlePolicy = field(default_factory=lambda: ThrottlePolicy(
        free_failures=3, max_failures_per_window=10))
    per_network: ThrottlePolicy = field(default_factory=lambda: ThrottlePolicy(
        free_failures=3, max_failures_per_window=30))


@dataclass(frozen=True)
class BatchSpec:
    """What staff ask for. `value`: what each code credits; with a plan it may be left out
    (the plan's price for its periods, in `currency` or the plan's own)."""

    count: int
    value: Fiat | None = None
    currency: str | None = None
    plan: str | None = None
    periods: int = 0
    expires_at: datetime | None = None
    label: str = ""
    staff_id: str | None = None


@dataclass(frozen=True)
class CreatedBatch:
    batch: VoucherBatch
    codes: list[str]  # grouped for display; shown this once, never stored


@dataclass(frozen=True)
class Redemption:
    entry: CreditEntry
    batch: VoucherBatch
    account: Account
    periods_bought: int
    balance: int  # the credit in the entry's currency afterwards (minor units)


class VoucherService:
    def __init__(self, uow: Callable[[], VouchersUnit], *,
                 hash_code: Callable[[str], str], plans: dict[str, Plan],
                 periods: dict[str, Period], coins: Callable[[], tuple[str, ...]],
                 clock: Clock, policy: VoucherPolicy | None = None,
                 reader: Callable[[], VouchersUnit] | None = None,
                 randbelow: Callable[[int], int] = secrets.randbelow) -> None:
        self._uow = uow
        self._reader = reader or uow
        self._hash = hash_code  # a keyed HMAC (the index key): never a plain digest
        self._plans = plans
        self._periods = periods
        self._coins = coins
        self._clock = clock
        self._policy = policy or VoucherPolicy()
        self._randbelow = randbelow

    # -- staff ---------------------------------------------------------------------------
    def _batch(self, spec: BatchSpec, now: datetime) -> VoucherBatch:
        value = spec.value
        if spec.plan is not None:
            plan = self._plans.get(spec.plan)
            if plan is None or spec.plan not in self._periods:
                known = ", ".join(sorted(p for p in self._plans if p in self._periods))
                raise InvalidInput("plan", f"no plan {spec.plan!r} with a period; plans: "
                                           f"{known or 'none'}")
            currency = value.currency if value else spec.currency
            price = plan.price_in(currency)
            if currency is not None and price.currency != currency:
                raise InvalidInput("currency", f"plan {spec.plan} has no price in {currency}")
            periods = spec.periods or 1
            cost = Fiat(price.minor * periods, price.currency)
            if value is not None and value.minor < cost.minor:
                raise InvalidInput("value", f"{periods} period(s) of {spec.plan} cost "
                                            f"{cost.as_decimal_string()} {cost.currency}")
            return VoucherBatch(new_id("vbt_"), now, spec.count, value or cost, spec.plan,
                                periods, spec.expires_at, None, spec.label, spec.staff_id)
        if value is None:
            raise InvalidInput("value", "is required (or a plan)")
        if spec.periods:
            raise InvalidInput("periods", "only with a plan")
        return VoucherBatch(new_id("vbt_"), now, spec.count, value, None, 0,
                            spec.expires_at, None, spec.label, spec.staff_id)

    async def create(self, spec: BatchSpec) -> CreatedBatch:
        """A batch of fresh codes: returned here, once; only their keyed hashes are kept."""
        now = self._clock()
        if spec.expires_at is not None and spec.expires_at <= now:
            raise InvalidInput("expires", "must be in the future")
        batch = self._batch(spec, now)
        codes: dict[str, str] = {}
        while len(codes) < batch.count:
            code = generate(self._randbelow)
            codes.setdefault(self._hash(hash_input(normalise(code))), code)
        async with self._uow() as uow:
            await uow.vouchers.add_batch(
                batch, [NewVoucher(new_id("vou_"), digest) for digest in codes])
            await uow.commit()
        log.info("vouchers: batch %s of %d codes made", batch.id, batch.count)
        return CreatedBatch(batch, list(codes.values()))

    async def batches(self, limit: int = 100) -> list[VoucherBatch]:
        async with self._reader() as uow:
            return await uow.vouchers.batches(limit)

    async def batch(self, batch_id: str) -> VoucherBatch:
        async with self._reader() as uow:
            found = await uow.vouchers.batch(batch_id)
        if found is None:
            raise NotFound("voucher batch")
        return found

    async def revoke(self, batch_id: str) -> VoucherBatch:
        """Its codes not yet redeemed can no longer be; those redeemed stay so. Revoking
        again changes nothing."""
        async with self._uow() as uow:
            if await uow.vouchers.batch(batch_id) is None:
                raise NotFound("voucher batch")
            if await uow.vouchers.revoke(batch_id, self._clock()):
                await uow.commit()
                log.info("vouchers: batch %s revoked", batch_id)
        return await self.batch(batch_id)

    async def redeemed_between(self, start: datetime, end: datetime) -> list[Redeemed]:
        async with self._reader() as uow:
            return await uow.vouchers.redeemed_between(start, end)

    # -- the customer --------------------------------------------------------------------
    def _counters(self, account_id: str, ip: str | None
                  ) -> list[tuple[str, ThrottlePolicy]]:
        # Keyed hashes again: the throttle table shows neither the network nor the account.
        return [(self._hash(f"voucher-account:{account_id}"), self._policy.per_account),
                (self._hash(f"voucher-net:{client_network(ip)}"), self._policy.per_network)]

    async def _open(self, uow: VouchersUnit, counters: list[tuple[str, ThrottlePolicy]],
                    now: datetime) -> list[ThrottleState | None]:
        states = [await uow.throttle.get(key) for key, _ in counters]
        waits = [w for s in states if (w := retry_after(s, now)) is not None]
        if waits:
            raise TooManyRequests(N_("too many voucher codes tried; wait and retry"),
                                  max(waits).total_seconds())
        return states

    async def redeem(self, account_id: str, typed: str, ip: str | None) -> Redemption:
        """The code's value goes to the account's credit (one `voucher` entry), and a plan
        voucher then buys its periods from that credit. `CodeRefused` for a typo (no
        lookup), `VoucherRefused` for any code that cannot be redeemed, whatever the
        reason, `TooManyRequests` while a counter is locked."""
        code = normalise(typed)
        digest = self._hash(hash_input(code))
        counters = self._counters(account_id, ip)
        now = self._clock()
        async with self._uow() as uow:
            states = await self._open(uow, counters, now)
            account = await uow.accounts.get(account_id, for_update=True)
            if account is None or account.deleted:
                raise NotFound("account")
            redeemed = await uow.vouchers.redeem(digest, account_id, now)
            if redeemed is None:
                # Every refusal asks this too (the same work whatever the reason): a code
                # this account redeemed already (a double click, a retry after a lost
                # answer) gets its answer again, and is no wrong guess.
                again = await uow.vouchers.redeemed_by(digest, account_id)
                if again is not None:
                    return await self._again(uow, account, again)
                for (key, policy), state in zip(counters, states, strict=True):
                    await uow.throttle.put(key, after_failure(state, now, policy))
                await uow.commit()
                raise VoucherRefused()
            redemption = await self._credit(uow, account, redeemed, now)
            await uow.commit()
        log.info("vouchers: a code of batch %s redeemed by account %s",
                 redeemed.batch.id, account_id)
        return redemption

    async def _credit(self, uow: VouchersUnit, account: Account, redeemed: Redeemed,
                      now: datetime) -> Redemption:
        batch = redeemed.batch
        entry = CreditEntry(account.id, CreditKind.VOUCHER, batch.value.minor,
                            batch.value.currency, voucher_cause(redeemed.voucher.id), now,
                            note=f"voucher batch {batch.id}")
        if not await uow.credit.add(entry):
            # The code was free but its credit is written (rows restored from a backup,
            # say): refused and rolled back rather than marked used with nothing credited.
            raise Conflict(N_("this voucher's credit is on the account already"))
        account.credited(entry, await uow.credit.balance(account.id, entry.currency))
        await uow.accounts.save(account)
        bought = 0
        for n in range(batch.periods):
            if await self._buy(uow, account, batch, f"spend:{entry.cause}:{n}", now):
                bought += 1
        return Redemption(entry, batch, account, bought,
                          await uow.credit.balance(account.id, entry.currency))

    async def _again(self, uow: VouchersUnit, account: Account, redeemed: Redeemed
                     ) -> Redemption:
        """The answer to this account's first redemption of the code, read back."""
        cause = voucher_cause(redeemed.voucher.id)
        entry = await uow.credit.find(account.id, cause)
        if entry is None:
            raise VoucherRefused()
        bought = [await uow.credit.find(account.id, f"spend:{cause}:{n}")
                  for n in range(redeemed.batch.periods)]
        return Redemption(entry, redeemed.batch, account,
                          sum(1 for b in bought if b is not None),
                          await uow.credit.balance(account.id, entry.currency))

    async def _buy(self, uow: VouchersUnit, account: Account, batch: VoucherBatch,
                   cause: str, now: datetime) -> bool:
        plan = self._plans.get(batch.plan or "")
        period = self._periods.get(batch.plan or "")
        if plan is None or period is None:
            return False  # the plan is gone from the configuration: the credit stays
        price = plan.price_in(batch.value.currency)
        coins = self._coins()
        coin = account.renewal_coin or (coins[0] if coins else "")
        return await buy_period(uow, account, plan.name, period, coin, price, now,
                                cause) is not None
