"""Cash by mail (docs/cash.md): a customer asks for a one-time token and mails cash with
it; finance records the envelope and its value becomes the account's credit.

The token is shown once and stored only as a keyed hash: asking again replaces the open
token with a new one. An envelope is recorded under the account's row lock, and the
token's row is marked used only if it was still unused, so two staff members recording
the same token at once write one credit entry (cause `cash:<token id>`, unique per
account too). Nothing here logs, returns or sends a token in clear except the one answer
that gives it to its customer."""

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from gateway.domain.cash import (
    CashRules,
    CashToken,
    Envelope,
    TokenUnusable,
    issue,
    new_token,
    normalize,
)
from gateway.domain.credit import CreditEntry, CreditKind
from gateway.domain.errors import N_, InvalidInput
from gateway.domain.money import parse_fiat
from gateway.services.errors import Conflict, NotFound
from gateway.services.ids import new_id
from gateway.services.ports import CashUnit, Clock

log = logging.getLogger(__name__)
NOTE_MAX = 200


@dataclass(frozen=True)
class CashInstructions:
    """What the portal shows: where to send the envelope and what else to know."""

    postal_address: str
    instructions: str | None
    valid_days: int


@dataclass(frozen=True)
class IssuedToken:
    token: str  # in clear: shown to the customer this once, never stored
    record: CashToken
    replaced: bool  # an open token of the account was replaced (and no longer works)


@dataclass(frozen=True)
class RecordedEnvelope:
    token_id: str
    account_id: str
    entry: CreditEntry
    balance: int  # the account's balance in the entry's currency after it


def cash_cause(token_id: str) -> str:
    return f"cash:{token_id}"


def _random_symbols(n: int) -> list[int]:
    return [secrets.randbelow(31) for _ in range(n)]


class CashService:
    def __init__(self, uow: Callable[[], CashUnit], *, clock: Clock, rules: CashRules,
                 index: Callable[[str], str], instructions: CashInstructions | None,
                 reader: Callable[[], CashUnit] | None = None,
                 random_symbols: Callable[[int], list[int]] = _random_symbols) -> None:
        """`index`: the keyed hash tokens are stored and found by (the blind index);
        `instructions`: None when cash by mail is off."""
        self._uow = uow
        self._reader = reader or uow
        self._clock = clock
        self._rules = rules
        self._index = index
        self._instructions = instructions
        self._random = random_symbols

    @property
    def instructions(self) -> CashInstructions | None:
        return self._instructions

    def _hash(self, canonical: str) -> str:
        return self._index(f"cash-token:{canonical}")

    def _require_on(self) -> None:
        if self._instructions is None:
            raise Conflict(N_("cash by mail is not offered here"))

    async def open_token(self, account_id: str) -> CashToken | None:
        """The account's open token, if any (its record: the token itself is not kept)."""
        async with self._reader() as uow:
            found = await uow.cash_tokens.open_for(account_id, self._clock())
        return found[-1] if found else None

    async def new_token(self, account_id: str) -> IssuedToken:
        """A fresh token for the account; an open one it had stops working."""
        self._require_on()
        now = self._clock()
        token = new_token(self._random)
        record = issue(new_id("ctk_"), account_id, now, self._rules)
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id, for_update=True)
            if account is None or account.deleted:
                raise NotFound("account")
            earlier = await uow.cash_tokens.open_for(account_id, now)
            for old in earlier:
                await uow.cash_tokens.delete(old.id)
            await uow.cash_tokens.add(record, self._hash(normalize(token)))
            await uow.commit()
        # Never the account beside the token's id: the token row is the only link between
        # an envelope and its account, erased on schedule, and a log line would outlive it.
        log.info("cash: token %s given%s", record.id,
                 " (an open token replaced)" if earlier else "")
        return IssuedToken(token, record, bool(earlier))

    async def record(self, token_text: str, amount: str, currency: str, note: str | None,
                     staff_id: str) -> RecordedEnvelope:
        """An envelope with `amount` (a decimal string) of `currency` and the token: the
        amount goes to the token's account's credit, once. A typo is refused before any
        lookup; an unknown, used or expired token is refused with what to do."""
        canonical = normalize(token_text)
        value = parse_fiat(amount, currency, "envelope")
        note = _note(note)
        async with self._reader() as uow:
            found = await uow.cash_tokens.by_hash(self._hash(canonical))
        if found is None:
            raise NotFound("token (never given, replaced by a newer one, or erased)")
        return await self._record(found, Envelope(value.minor, value.currency, staff_id,
                                                  self._clock(), note))

    async def _record(self, found: CashToken, envelope: Envelope) -> RecordedEnvelope:
        token_id = found.id
        async with self._uow() as uow:
            account = await uow.accounts.get(found.account_id, for_update=True)
            # Read under the account's lock: whoever recorded it first has committed.
            token = await uow.cash_tokens.get(token_id)
            if token is None or account is None or account.deleted:
                raise NotFound("token (erased with its account, or by retention)")
            used = token.used(envelope)
            _same_currency(account.currency, envelope.currency)
            entry = CreditEntry(account.id, CreditKind.CASH, envelope.amount,
                                envelope.currency, cash_cause(token.id), envelope.at,
                                staff_id=envelope.staff_id)
            if not await uow.cash_tokens.mark_used(used) or not await uow.credit.add(entry):
                raise TokenUnusable("this token was used already: its envelope is recorded")
            balance = await uow.credit.balance(account.id, entry.currency)
            account.credited(entry, balance)
            await uow.accounts.save(account)
            await uow.commit()
        log.info("cash: an envelope for token %s recorded", token_id)
        return RecordedEnvelope(token_id, account.id, entry, balance)


def _note(note: str | None) -> str | None:
    text = " ".join((note or "").split())
    if len(text) > NOTE_MAX:
        raise InvalidInput("note", f"at most {NOTE_MAX} characters")
    return text or None


def _same_currency(account_currency: str | None, currency: str) -> None:
    """Credit is kept per currency and spent in the account's: cash in another one would
    sit unspendable, so it is refused (staff record its value in the account's currency,
    or hand it back)."""
    if account_currency is not None and account_currency != currency:
        raise InvalidInput("envelope.currency", f"this account keeps its credit in "
                           f"{account_currency}; record the envelope's value in "
                           f"{account_currency}")
