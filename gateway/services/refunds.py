"""Refunds (docs/refunds.md): a customer asks for credit back to an address of theirs;
finance approves or refuses; on the last approval the gateway fixes the coin amount at the
median rate and prepares what the operator's wallet signs and sends. It never signs.

Money: the amount is held from the balance by a `refund` ledger entry written under the
account's row lock (two requests at once cannot both spend the same credit), and given
back by a `refund_returned` entry when the refund is refused or cancelled."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from gateway.domain.credit import CreditEntry, InsufficientCredit
from gateway.domain.errors import InvalidInput
from gateway.domain.money import (
    FIAT_EXPONENTS,
    Fiat,
    fiat_to_base_units,
    format_units,
    parse_fiat,
)
from gateway.domain.refund_chain import RefundWatch
from gateway.domain.refunds import (
    Quote,
    Refund,
    RefundStateError,
    RefundStatus,
    approvals_needed,
    clean_reason,
)
from gateway.i18n import ENGLISH, N_, Catalogs, Voice
from gateway.services.attempts import PasswordCheck
from gateway.services.errors import Conflict, NotFound
from gateway.services.ids import new_id
from gateway.services.ports import (
    Clock,
    EmailChangeUnit,
    RateProvider,
    RefundsUnit,
)
from gateway.services.ports.refunds import Coins, RefundChains, RefundPolicy
from gateway.services.two_factor import TwoFactorService

ADDRESS_MAX = 200
MAIL_SUBJECT = N_("A refund was requested from your account")
MAIL_BODY = N_("A refund of %(amount)s in %(coin)s was requested from your Packetra "
               "account. The amount is held from your credit until our finance team has "
               "looked at it.\n\nIf it wasn't you, cancel it in your account page at once, "
               "change your password and contact support.")

log = logging.getLogger(__name__)


class Proof(Protocol):
    async def prove(self, account_id: str, password: str | None, code: str | None) -> None:
        """The customer's password (and second factor when on), counted and throttled
        like every password check; `InvalidInput` when wrong."""


class PasswordAndCode:
    """`Proof` by the account's password and, when two-factor is on, a code."""

    def __init__(self, uow: Callable[[], EmailChangeUnit], check: PasswordCheck,
                 two_factor: TwoFactorService) -> None:
        self._uow = uow
        self._check = check
        self._two_factor = two_factor

    async def prove(self, account_id: str, password: str | None, code: str | None) -> None:
        checked = await self._check.verify(account_id, password)
        second = await self._two_factor.check(account_id, code)
        async with self._uow() as uow:
            await self._check.still(uow, checked)
            await self._two_factor.require_field(uow, account_id, second)
            await uow.commit()


@dataclass(frozen=True)
class RefundAsk:
    """What the customer's form or API request carries."""

    amount: object  # decimal string in the account's currency
    coin: object
    address: object
    currency: object = None  # when given, must be the account's
    password: str | None = None
    code: str | None = None


def _text(value: object, field: str, limit: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidInput(field, N_("is required"))
    if len(text) > limit:
        raise InvalidInput(field, f"at most {limit} characters")
    return text


class RefundService:
    def __init__(self, uow: Callable[[], RefundsUnit], *, chains: RefundChains,
                 directory: Coins, rates: RateProvider, proof: Proof,
                 policy: RefundPolicy, clock: Clock, catalogs: Catalogs = ENGLISH) -> None:
        self._uow = uow
        self._catalogs = catalogs  # the mail is in the account's language
        self._chains = chains
        self._directory = directory
        self._rates = rates
        self._proof = proof
        self._policy = policy
        self._clock = clock

    # -- the customer -------------------------------------------------------------------
    def _coin(self, raw: object) -> str:
        coin = raw.strip().upper() if isinstance(raw, str) else ""
        if coin not in self._directory.coins():
            known = ", ".join(self._directory.coins()) or "none"
            raise InvalidInput("coin", f"{raw!r} is not accepted here; accepted: {known}")
        return coin

    async def _above_minimum(self, coin: str, amount: int, currency: str) -> None:
        """Refuses an amount worth less than the coin's least refund at the current rate
        (the rate is fetched here, before any transaction opens)."""
        minimum = self._policy.minimums.get(coin, 0)
        if minimum <= 0:
            return
        rate, _ = await self._rates.rate(coin, currency)
        decimals = self._directory.decimals(coin)
        worth = fiat_to_base_units(Fiat(amount, currency), rate, decimals)
        if worth < minimum:
            least = Decimal(minimum).scaleb(-decimals) * rate
            exp = FIAT_EXPONENTS[currency]
            raise InvalidInput("amount", (
                f"the least refund in {coin} is {format_units(minimum, decimals)} {coin} "
                f"(about {least.quantize(Decimal(1).scaleb(-exp))} {currency} at today's "
                "rate): network fees would eat a smaller one"))

    async def request(self, account_id: str, ask: RefundAsk) -> Refund:
        """Holds the amount from the balance and queues the mail to the account."""
        coin = self._coin(ask.coin)
        address = self._chains.check_address(coin, _text(ask.address, "address", ADDRESS_MAX))
        await self._proof.prove(account_id, ask.password, ask.code)
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id)
            if account is None or account.deleted:
                raise NotFound("account")
            currency = account.currency
            if currency is None:  # none chosen: the one its credit was kept in
                latest = await uow.credit.entries(account_id, 1)
                currency = latest[0].currency if latest else None
        if currency is None:
            raise InvalidInput("currency", N_("the account has no currency yet, so it holds no "
                                  "credit to refund"))
        if ask.currency is not None and ask.currency != currency:
            raise InvalidInput("currency", N_("the account's credit is in %(currency)s"),
                               currency=currency)
        amount = parse_fiat(ask.amount, currency, "amount").minor
        await self._above_minimum(coin, amount, currency)
        return await self._hold(account_id, Refund.request(
            id=new_id("rfd_"), account_id=account_id, amount=amount, currency=currency,
            coin=coin, address=address, now=self._clock(),
            approvals_needed=approvals_needed(amount, self._policy.second_approval_above)))

    async def _hold(self, account_id: str, refund: Refund) -> Refund:
        async with self._uow() as uow:
            # The row lock: a second request (another instance) waits here and then sees
            # this one's hold in the balance.
            account = await uow.accounts.get(account_id, for_update=True)
            assert account is not None
            available = await uow.credit.balance(account_id, refund.currency)
            if refund.amount > available:
                raise InsufficientCredit(refund.amount, available)
            await uow.refunds.add(refund)
            await uow.credit.add(refund.hold_entry())
            profile = await uow.accounts.profile(account_id)
            voice = self._catalogs.voice(account.language)
            await uow.mail.queue(profile.email, voice.gettext(MAIL_SUBJECT),
                                 _request_mail(refund, voice), self._clock())
            uow.collect(refund)
            await uow.commit()
        return refund

    async def mine(self, account_id: str, limit: int = 50) -> list[Refund]:
        async with self._uow() as uow:
            return await uow.refunds.of_account(account_id, limit)

    async def cancel(self, account_id: str, refund_id: str) -> Refund:
        async with self._uow() as uow:
            refund = await uow.refunds.get(refund_id, for_update=True)
            if refund is None or refund.account_id != account_id:
                raise NotFound("refund")
            try:
                entry = refund.cancel(self._clock())
            except RefundStateError as exc:
                raise Conflict(str(exc)) from None
            await _give_back(uow, entry)
            await uow.refunds.save(refund)
            uow.collect(refund)
            await uow.commit()
        return refund

    # -- finance ------------------------------------------------------------------------
    async def open(self, limit: int = 200) -> list[Refund]:
        async with self._uow() as uow:
            return await uow.refunds.open(limit)

    async def get(self, refund_id: str) -> Refund:
        async with self._uow() as uow:
            refund = await uow.refunds.get(refund_id)
        if refund is None:
            raise NotFound("refund")
        return refund

    async def approve(self, refund_id: str, staff_id: str, reason: str) -> Refund:
        """One approval; the last one needed fixes the quote (rate fetched and
        instructions prepared before the transaction that records it) and starts watching
        the customer's address for the payment (`refund_chain`)."""
        clean_reason(reason)
        refund = await self.get(refund_id)
        quote = None
        try:
            if refund.check_approval(staff_id):
                quote = await self._quote(refund)
        except RefundStateError as exc:
            raise Conflict(str(exc)) from None
        async with self._uow() as uow:
            locked = await uow.refunds.get(refund_id, for_update=True)
            assert locked is not None
            try:
                last = locked.check_approval(staff_id)
            except RefundStateError as exc:
                raise Conflict(str(exc)) from None
            if last and quote is None:
                raise Conflict("another approval was recorded meanwhile; approve again")
            if quote is not None and quote.spends and set(quote.spends) & \
                    await uow.refunds.spent_outputs(locked.coin):
                raise Conflict("another refund spent those outputs meanwhile; approve again "
                               "for instructions of its own")
            locked.approve(staff_id, reason, self._clock(), quote if last else None)
            await uow.refunds.save(locked)
            if last and quote is not None:
                await self._watch(uow, locked, quote)
            uow.collect(locked)
            await uow.commit()
        return locked

    async def _watch(self, uow: RefundsUnit, refund: Refund, quote: Quote) -> None:
        if refund.address is None:
            raise Conflict("the refund address was erased meanwhile; refuse this refund")
        target = self._chains.watch_target(refund.coin, refund.address)
        if target is None:
            return  # proven by a tx key instead (Monero)
        # Two open refunds to one address could not be told apart on the chain.
        other = await uow.refund_watches.open_to(refund.coin, target.match_key)
        if other is not None:
            raise Conflict(f"refund {other} to the same address is approved and not yet "
                           "completed; approve this one once it is (the chain cannot tell "
                           "two payments to one address apart)")
        await uow.refund_watches.add(
            RefundWatch(refund.id, refund.account_id, refund.coin, target.match_key,
                        quote.crypto_amount, target.confirmations),
            target.address_space, self._clock())

    async def _quote(self, refund: Refund) -> Quote:
        rate, _ = await self._rates.rate(refund.coin, refund.currency)
        crypto = fiat_to_base_units(Fiat(refund.amount, refund.currency), rate,
                                    self._directory.decimals(refund.coin), round_up=False)
        if refund.address is None:
            raise Conflict("the customer's account was deleted and the refund address "
                           "erased with it; refuse this refund")
        async with self._uow() as uow:
            paid = await uow.refunds.paid_outputs(refund.coin)
            spent = await uow.refunds.spent_outputs(refund.coin)
            change = await uow.refunds.next_change_index(refund.coin)
        spendable = [p for p in paid if (p.txid, p.output_index) not in spent]
        return await self._chains.prepare(refund.coin, refund.address, crypto, spendable,
                                          change, format(rate.normalize(), "f"))

    async def refuse(self, refund_id: str, staff_id: str, reason: str) -> Refund:
        async with self._uow() as uow:
            refund = await uow.refunds.get(refund_id, for_update=True)
            if refund is None:
                raise NotFound("refund")
            try:
                entry = refund.refuse(staff_id, reason, self._clock())
            except RefundStateError as exc:
                raise Conflict(str(exc)) from None
            await _give_back(uow, entry)
            await uow.refunds.save(refund)
            uow.collect(refund)
            await uow.commit()
        return refund


class ProvenRefunds:
    """Refunds proven by a txid and tx key the operator enters (Monero)."""

    def __init__(self, uow: Callable[[], RefundsUnit], chains: RefundChains,
                 clock: Clock) -> None:
        self._uow = uow
        self._chains = chains
        self._clock = clock

    def asks_tx_key(self, coin: str) -> bool:
        return self._chains.proves_payments(coin)

    async def record_tx_key(self, refund_id: str, txid: str, tx_key: str) -> Refund:
        """Checks that the transaction pays the refund's address at least the approved
        amount, then marks it sent (completed once the coin's depth is seen, by the
        on-chain part)."""
        txid = _text(txid, "txid", 100)
        tx_key = _text(tx_key, "tx_key", 200)
        async with self._uow() as uow:
            refund = await uow.refunds.get(refund_id)
        if refund is None:
            raise NotFound("refund")
        if refund.quote is None or refund.address is None:
            raise Conflict(f"this refund is {refund.status}; only an approved refund can be "
                           "proven sent")
        if not self._chains.proves_payments(refund.coin):
            raise InvalidInput("tx_key", f"{refund.coin} refunds are matched on the chain; "
                                         "no tx key is needed")
        proven = await self._chains.check_tx_key(refund.coin, txid, tx_key, refund.address)
        if proven.received < refund.quote.crypto_amount:
            raise InvalidInput("txid", f"the transaction pays the address {proven.received} "
                               f"base units; the refund is {refund.quote.crypto_amount}")
        async with self._uow() as uow:
            locked = await uow.refunds.get(refund_id, for_update=True)
            assert locked is not None
            # One transaction proves one refund: an earlier one to the same address (a
            # previous refund) must not pass for this one.
            other = await uow.refunds.paid_by(locked.coin, txid)
            if other is not None and other != refund_id:
                raise InvalidInput("txid", f"this transaction already proves refund {other}")
            try:
                locked.mark_sent(txid, self._clock(), tx_key=tx_key)
            except RefundStateError as exc:
                raise Conflict(str(exc)) from None
            await uow.refunds.save(locked)
            await uow.commit()
        return locked


    async def run(self) -> int:
        """Re-checks each refund proven sent by a tx key until its transaction is at the
        coin's depth, then completes it (`refund.completed`). One refund's trouble (the
        node down, a transaction gone) holds back no other; returns how many completed."""
        async with self._uow() as uow:
            sent = [r for r in await uow.refunds.open(10_000)
                    if r.status is RefundStatus.SENT and r.tx_key
                    and self._chains.proves_payments(r.coin)]
        completed = 0
        for refund in sent:
            try:
                completed += await self._recheck(refund)
            except Exception as exc:  # tried again next run
                log.warning("refunds: refund %s not re-checked yet (%s)", refund.id,
                            type(exc).__name__)
        return completed

    async def _recheck(self, refund: Refund) -> int:
        assert refund.txid and refund.tx_key and refund.address and refund.quote
        proven = await self._chains.check_tx_key(refund.coin, refund.txid, refund.tx_key,
                                                 refund.address)
        if (proven.received < refund.quote.crypto_amount
                or proven.confirmations < self._chains.confirmations(refund.coin)):
            return 0
        async with self._uow() as uow:
            locked = await uow.refunds.get(refund.id, for_update=True)
            if locked is None or locked.status is not RefundStatus.SENT:
                return 0
            locked.complete(self._clock())
            await uow.refunds.save(locked)
            uow.collect(locked)
            await uow.commit()
        return 1


async def _give_back(uow: RefundsUnit, entry: CreditEntry) -> None:
    """The held amount back on the balance, announced like any credit
    (`account.credited`, kind `refund_returned`)."""
    if not await uow.credit.add(entry):
        return
    account = await uow.accounts.get(entry.account_id, for_update=True)
    if account is None or account.deleted:
        return
    account.credited(entry, await uow.credit.balance(account.id, entry.currency))
    await uow.accounts.save(account)


def _request_mail(refund: Refund, voice: Voice) -> str:
    return voice.gettext(MAIL_BODY, amount=voice.money(refund.amount_text, refund.currency),
                         coin=refund.coin)

