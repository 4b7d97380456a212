"""An in-memory unit of work for service tests (the fake repositories of cosmicpython's
chapter 6): dictionaries instead of tables, the same commit/rollback semantics.

A `MemoryStore` is the database. Each `MemoryUnitOfWork` works on a deep copy of it,
taken when the unit is entered; `commit()` writes the collected aggregates' events to
the outbox (as `SqlUnitOfWork` does) and makes the copy the store's state; leaving the
block without committing drops the copy (rollback). Units are not isolated from each
other beyond that: one at a time, as services use them in a test.

It lives under tests/ rather than gateway/adapters/: nothing in production builds it,
and a second implementation of every repository inside the product would be code that
ships without a user. `tests/contract/test_unit_of_work_contract.py` runs the same
scenarios against it and against `SqlUnitOfWork`, so it cannot drift from the real one.

What it models: accounts (sign-up, login, profile, two-factor, recovery codes), sessions,
API keys, login throttle, security log, invoices and payments, chain cursors,
idempotency keys, webhook endpoints, the event outbox with its deliveries, the credit
ledger and cash tokens. Its account repository is the parts the sign-in units use
(`SignInAccounts`: storage, credentials, second factor), plus the few lifecycle and
consent calls the shared suite pins (deletion due, erasure, objection); the lifecycle
queries of retention (inactive and lapsed accounts, policy notices) are not modelled, and
no unit it claims to be needs them: their tests run on the database."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Self, TypeVar

from chains.base import BlockRef, Destination, Lock
from gateway.domain.accounts import Account
from gateway.domain.cash import CashToken
from gateway.domain.credit import CreditEntry
from gateway.domain.events import DomainEvent, in_delivery_order
from gateway.domain.invoices import Invoice, Status
from gateway.domain.payments import PaymentStatus
from gateway.domain.states import IdempotencyState
from gateway.domain.throttle import ThrottleState
from gateway.domain.timestamps import rfc3339
from gateway.domain.vouchers import Voucher, VoucherBatch, VoucherState, on_the_books
from gateway.services.errors import Conflict, NotFound
from gateway.services.ids import new_id
from gateway.services.ports import (
    AccountDetails,
    AccountsUnit,
    ApiKeyRecord,
    ApiKeysUnit,
    CashUnit,
    Clock,
    DeliveryRecord,
    EmailChangeUnit,
    EndpointRecord,
    EndpointsUnit,
    EventRecord,
    EventsUnit,
    HasEvents,
    IdempotencyRecord,
    InvoiceRecord,
    InvoicesUnit,
    Login,
    NewPayment,
    PaymentRecord,
    Profile,
    RecoveryUnit,
    SecurityEntry,
    SessionRecord,
    ThrottledUnit,
    TotpState,
    TwoFactorUnit,
    VoucherStoreUnit,
    WalletUnit,
)
from gateway.services.ports.vouchers import NewVoucher, Redeemed, VoucherTotals
from webhooks.store import DeliveryStatus

TOMBSTONE_HASH = "!deleted"


# --- rows ------------------------------------------------------------------------------
@dataclass
class AccountRow:
    account: Account
    profile: Profile | None
    email_index: str
    password_hash: str
    totp_secret: str | None = None
    totp_enabled_at: datetime | None = None
    totp_last_step: int | None = None
    email_verified_at: datetime | None = None
    email_undo_until: datetime | None = None
    last_login_at: datetime | None = None
    objected_at: datetime | None = None


@dataclass
class InvoiceRow:
    invoice: Invoice
    space: str
    destination: Destination
    payment_uri: str


@dataclass
class PaymentRow:
    seq: int
    invoice_id: str
    record: PaymentRecord


@dataclass
class EndpointRow:
    record: EndpointRecord
    secret: str
    previous: str | None = None
    previous_until: datetime | None = None
    deleted_at: datetime | None = None


@dataclass
class EventRow:
    record: EventRecord
    account_id: str
    seq: int


@dataclass
class State:
    """Everything a database would hold, as plain data (copied whole per unit)."""

    accounts: dict[str, AccountRow] = field(default_factory=dict)
    recovery_codes: dict[int, tuple[str, str, datetime | None]] = field(default_factory=dict)
    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    api_keys: dict[str, tuple[ApiKeyRecord, str]] = field(default_factory=dict)
    throttle: dict[str, ThrottleState] = field(default_factory=dict)
    security_log: list[tuple[str | None, SecurityEntry]] = field(default_factory=list)
    invoices: dict[str, InvoiceRow] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    payments: dict[tuple[str, str, int], PaymentRow] = field(default_factory=dict)
    cursors: dict[str, tuple[BlockRef, str | None, datetime | None]] = field(
        default_factory=dict)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    endpoints: dict[str, EndpointRow] = field(default_factory=dict)
    events: dict[str, EventRow] = field(default_factory=dict)
    deliveries: dict[str, tuple[str, DeliveryRecord, datetime]] = field(default_factory=dict)
    credit: list[CreditEntry] = field(default_factory=list)
    cash_tokens: dict[str, tuple[CashToken, str]] = field(default_factory=dict)  # id: (, hash)
    voucher_batches: dict[str, VoucherBatch] = field(default_factory=dict)
    vouchers: dict[str, tuple[Voucher, str]] = field(default_factory=dict)  # id: (, hash)
    seq: int = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


_A = TypeVar("_A", Account, Invoice)


def _fresh(obj: _A) -> _A:
    """A copy as a repository returns it: loaded, with no pending events."""
    found = copy.deepcopy(obj)
    found.events.clear()
    return found


# --- accounts --------------------------------------------------------------------------
class MemoryAccounts:
    """`SignInAccounts` (storage, credentials, second factor), and of the other parts
    only what the shared suite pins: deletion due, who is alive, erasure, objection."""

    def __init__(self, state: State, collect: MemoryUnitOfWork) -> None:
        self._s = state
        self._uow = collect

    def _row(self, account_id: str) -> AccountRow:
        row = self._s.accounts.get(account_id)
        if row is None:
            raise NotFound("account")
        return row

    async def add(self, account: Account, profile: Profile, email_index: str,
                  password_hash: str, policy_version: str) -> None:
        self._uow.collect(account)
        if any(r.email_index == email_index for r in self._s.accounts.values()):
            raise Conflict("an account with this email already exists")
        stored = copy.deepcopy(account)
        stored.policy_version = policy_version
        self._s.accounts[account.id] = AccountRow(stored, profile, email_index,
                                                  password_hash)

    async def get(self, account_id: str, for_update: bool = False) -> Account | None:
        row = self._s.accounts.get(account_id)
        return _fresh(row.account) if row else None

    async def profile(self, account_id: str) -> Profile:
        row = self._s.accounts.get(account_id)
        if row is None or row.profile is None:
            raise NotFound("account")
        return row.profile

    async def find_login(self, email_index: str) -> Login | None:
        for row in self._s.accounts.values():
            if row.email_index == email_index:
                return Login(_fresh(row.account), row.password_hash)
        return None

    async def save(self, account: Account) -> None:
        self._uow.collect(account)
        row = self._row(account.id)
        row.account = copy.deepcopy(account)
        row.account.events.clear()

    async def set_password_hash(self, account_id: str, password_hash: str) -> None:
        self._row(account_id).password_hash = password_hash

    async def update_profile(self, account_id: str, profile: Profile, email_index: str) -> None:
        if any(r.email_index == email_index for i, r in self._s.accounts.items()
               if i != account_id):
            raise Conflict("an account with this email already exists")
        row = self._row(account_id)
        row.profile, row.email_index = profile, email_index

    async def totp(self, account_id: str) -> TotpState:
        row = self._row(account_id)
        return TotpState(row.totp_secret, row.totp_enabled_at is not None, row.totp_last_step)

    async def email_verified(self, account_id: str) -> bool:
        row = self._s.accounts.get(account_id)
        return row is not None and row.email_verified_at is not None

    async def mark_email_verified(self, account_id: str, now: datetime) -> None:
        self._row(account_id).email_verified_at = now

    async def email_undo_until(self, account_id: str) -> datetime | None:
        row = self._s.accounts.get(account_id)
        return row.email_undo_until if row else None

    async def set_email_undo_until(self, account_id: str, until: datetime | None) -> None:
        self._row(account_id).email_undo_until = until

    async def set_totp(self, account_id: str, secret: str | None, enabled_at: datetime | None,
                       last_step: int | None) -> None:
        row = self._row(account_id)
        row.totp_secret, row.totp_enabled_at, row.totp_last_step = secret, enabled_at, last_step

    async def advance_totp_step(self, account_id: str, step: int) -> bool:
        row = self._row(account_id)
        if row.totp_last_step is not None and row.totp_last_step >= step:
            return False
        row.totp_last_step = step
        return True

    async def replace_recovery_codes(self, account_id: str, hashes: list[str]) -> None:
        codes = self._s.recovery_codes
        for code_id in [i for i, c in codes.items() if c[0] == account_id]:
            del codes[code_id]
        for h in hashes:
            codes[self._s.next_seq()] = (account_id, h, None)

    async def unused_recovery_codes(self, account_id: str) -> list[tuple[int, str]]:
        return [(i, c[1]) for i, c in self._s.recovery_codes.items()
                if c[0] == account_id and c[2] is None]

    async def use_recovery_code(self, code_id: int, now: datetime) -> bool:
        code = self._s.recovery_codes.get(code_id)
        if code is None or code[2] is not None:
            return False
        self._s.recovery_codes[code_id] = (code[0], code[1], now)
        return True

    async def details(self, account_id: str) -> AccountDetails:
        row = self._row(account_id)
        return AccountDetails(row.email_verified_at, row.totp_enabled_at)

    async def due_for_deletion(self, now: datetime) -> list[str]:
        return sorted(i for i, r in self._s.accounts.items()
                      if r.account.deletion_due_at is not None
                      and r.account.deletion_due_at <= now and r.account.deleted_at is None)

    async def record_login(self, account_id: str, now: datetime) -> None:
        self._row(account_id).last_login_at = now

    async def alive_among(self, account_ids: list[str]) -> list[str]:
        return sorted(i for i in set(account_ids) if i in self._s.accounts
                      and self._s.accounts[i].account.deleted_at is None)

    async def set_objection(self, account_id: str, at: datetime | None) -> None:
        self._row(account_id).objected_at = at

    async def objection(self, account_id: str) -> datetime | None:
        row = self._s.accounts.get(account_id)
        return row.objected_at if row else None

    async def erase_personal_data(self, account_id: str) -> None:
        row = self._row(account_id)
        keys = {row.email_index, f"2fa:{account_id}", f"pw:{account_id}"}
        for key in keys & set(self._s.throttle):
            del self._s.throttle[key]
        self._s.accounts[account_id] = AccountRow(
            row.account, None, f"deleted:{account_id}", TOMBSTONE_HASH)
        await self.replace_recovery_codes(account_id, [])
        for session_id in [i for i, s in self._s.sessions.items()
                           if s.account_id == account_id]:
            del self._s.sessions[session_id]
        self._s.security_log = [e for e in self._s.security_log if e[0] != account_id]
        for token_id in [i for i, (t, _) in self._s.cash_tokens.items()
                         if t.account_id == account_id]:
            del self._s.cash_tokens[token_id]


class MemorySessions:
    def __init__(self, state: State) -> None:
        self._s = state

    async def add(self, session: SessionRecord, now: datetime) -> None:
        self._s.sessions[session.id] = replace(session, last_seen_at=now)

    async def get(self, session_id: str) -> SessionRecord | None:
        return self._s.sessions.get(session_id)

    async def revoke(self, session_id: str, now: datetime) -> None:
        found = self._s.sessions.get(session_id)
        if found is not None and found.revoked_at is None:
            self._s.sessions[session_id] = replace(found, revoked_at=now)

    async def revoke_all(self, account_id: str, now: datetime, keep: str | None = None) -> int:
        live = [s for s in self._s.sessions.values() if s.account_id == account_id
                and s.revoked_at is None and s.id != keep]
        for s in live:
            self._s.sessions[s.id] = replace(s, revoked_at=now)
        return len(live)

    async def touch(self, session_id: str, now: datetime) -> None:
        found = self._s.sessions.get(session_id)
        if found is not None:
            self._s.sessions[session_id] = replace(found, last_seen_at=now)


class MemoryApiKeys:
    def __init__(self, state: State) -> None:
        self._s = state

    async def add(self, record: ApiKeyRecord, key_hash: str) -> None:
        self._s.api_keys[record.id] = (record, key_hash)

    async def by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        return next((r for r, h in self._s.api_keys.values() if h == key_hash), None)

    async def all(self) -> list[ApiKeyRecord]:
        return sorted((r for r, _ in self._s.api_keys.values()), key=lambda r: r.created_at)

    async def revoke(self, key_id: str, at: datetime) -> bool:
        found = self._s.api_keys.get(key_id)
        if found is None or found[0].revoked_at is not None:
            return False
        self._s.api_keys[key_id] = (replace(found[0], revoked_at=at), found[1])
        return True


class MemoryThrottle:
    def __init__(self, state: State) -> None:
        self._s = state

    async def get(self, key: str) -> ThrottleState | None:
        return self._s.throttle.get(key)

    async def put(self, key: str, state: ThrottleState) -> None:
        self._s.throttle[key] = state

    async def clear(self, key: str) -> None:
        self._s.throttle.pop(key, None)


class MemorySecurityLog:
    def __init__(self, state: State) -> None:
        self._s = state

    async def add(self, account_id: str | None, event: str, ip: str | None,
                  at: datetime) -> None:
        self._s.security_log.append((account_id, SecurityEntry(event, ip, at)))

    async def for_account(self, account_id: str) -> list[SecurityEntry]:
        return sorted((e for a, e in self._s.security_log if a == account_id),
                      key=lambda e: e.at)

    async def encrypt_legacy(self) -> int:
        return 0  # nothing is ever stored in the clear here

    async def purge(self, before: datetime, dry_run: bool) -> int:
        old = [e for e in self._s.security_log if e[1].at < before]
        if not dry_run:
            self._s.security_log = [e for e in self._s.security_log if e[1].at >= before]
        return len(old)


# --- invoices and payments -------------------------------------------------------------
def _open_to_change(invoice: Invoice, now: datetime) -> bool:
    return invoice.status in (Status.NEW, Status.PROCESSING) or (
        invoice.status == Status.EXPIRED and invoice.terms.monitoring_until > now)


class MemoryInvoices:
    def __init__(self, state: State, collect: MemoryUnitOfWork) -> None:
        self._s = state
        self._uow = collect

    async def allocate(self, space: str, count: int = 1) -> range:
        if count < 1:
            raise ValueError("count must be positive")
        start = self._s.counters.get(space, 0)
        self._s.counters[space] = start + count
        return range(start, start + count)

    async def add(self, invoice: Invoice, space: str, destination: Destination,
                  payment_uri: str) -> None:
        self._uow.collect(invoice)
        stored = copy.deepcopy(invoice)
        stored.events.clear()
        self._s.invoices[invoice.id] = InvoiceRow(stored, space, destination, payment_uri)

    async def get(self, invoice_id: str, for_update: bool = False) -> Invoice | None:
        row = self._s.invoices.get(invoice_id)
        return _fresh(row.invoice) if row else None

    def _payments(self, invoice_id: str) -> tuple[PaymentRecord, ...]:
        rows = sorted((p for p in self._s.payments.values() if p.invoice_id == invoice_id),
                      key=lambda p: (p.record.seen_at, p.seq))
        return tuple(p.record for p in rows)

    def _record(self, row: InvoiceRow) -> InvoiceRecord:
        return InvoiceRecord(_fresh(row.invoice), row.destination.address,
                             row.payment_uri, self._payments(row.invoice.id))

    async def read(self, invoice_id: str) -> InvoiceRecord | None:
        row = self._s.invoices.get(invoice_id)
        return self._record(row) if row else None

    async def read_with_tip(self, invoice_id: str, feeds: Mapping[str, str]
                            ) -> tuple[InvoiceRecord, BlockRef | None] | None:
        record = await self.read(invoice_id)
        if record is None:
            return None
        tip = self._s.cursors.get(feeds.get(record.invoice.coin, record.invoice.coin))
        return record, tip[0] if tip else None

    async def page(self, account_id: str | None, status: Status | None, after: str | None,
                   limit: int) -> list[InvoiceRecord]:
        rows = sorted(self._s.invoices.values(),
                      key=lambda r: (r.invoice.created_at, r.invoice.id), reverse=True)
        rows = [r for r in rows if (account_id is None or r.invoice.account_id == account_id)
                and (status is None or r.invoice.status.value == status)]
        anchor = self._s.invoices.get(after) if after is not None else None
        if anchor is not None:
            mark = (anchor.invoice.created_at, anchor.invoice.id)
            rows = [r for r in rows if (r.invoice.created_at, r.invoice.id) < mark]
        return [self._record(r) for r in rows[:limit]]

    async def by_match_keys(self, coin: str, match_keys: Sequence[bytes]) -> dict[bytes,
                                                                                  Invoice]:
        wanted = set(match_keys)
        return {r.destination.match_key: _fresh(r.invoice)
                for r in self._s.invoices.values()
                if r.invoice.coin == coin and r.destination.match_key in wanted}

    async def get_many(self, invoice_ids: Sequence[str]) -> list[Invoice]:
        return [_fresh(self._s.invoices[i].invoice)
                for i in sorted(set(invoice_ids)) if i in self._s.invoices]

    async def reaching_depth(self, coins: Sequence[str], after: int, upto: int,
                             max_required: int, now: datetime) -> list[str]:
        found: set[str] = set()
        for p in self._s.payments.values():
            inv = self._s.invoices[p.invoice_id].invoice
            rec = p.record
            if (rec.coin not in coins or rec.status != PaymentStatus.CONFIRMED
                    or not _open_to_change(inv, now)):
                continue
            if _reaches(rec, inv, after, upto, max_required):
                found.add(p.invoice_id)
        return sorted(found)

    async def open_for_account(self, account_id: str, now: datetime) -> list[Invoice]:
        rows = [r.invoice for r in self._s.invoices.values()
                if r.invoice.account_id == account_id and r.invoice.status == Status.NEW
                and r.invoice.terms.expires_at > now]
        rows.sort(key=lambda i: (i.created_at, i.id), reverse=True)
        return [_fresh(i) for i in rows[:1000]]

    async def open_with_payments(self, coins: Sequence[str], now: datetime) -> list[Invoice]:
        paid = {p.invoice_id for p in self._s.payments.values()
                if p.record.status != PaymentStatus.REVERTED}
        return [_fresh(r.invoice) for i, r in sorted(self._s.invoices.items())
                if r.invoice.coin in coins and i in paid and _open_to_change(r.invoice, now)]

    async def due_by_time(self, now: datetime) -> list[Invoice]:
        due = [r.invoice for _, r in sorted(self._s.invoices.items())
               if (r.invoice.status == Status.NEW and r.invoice.terms.expires_at <= now)
               or (r.invoice.status == Status.PROCESSING
                   and r.invoice.terms.monitoring_until <= now)]
        return [_fresh(i) for i in due[:500]]

    async def save(self, invoice: Invoice) -> None:
        self._uow.collect(invoice)
        row = self._s.invoices[invoice.id]
        row.invoice = copy.deepcopy(invoice)
        row.invoice.events.clear()

    async def save_many(self, changed: Sequence[Invoice]) -> None:
        for invoice in changed:
            self._uow.collect(invoice)
            stored = self._s.invoices[invoice.id].invoice
            stored.status, stored.exception = invoice.status, invoice.exception
            stored.settled_at = invoice.settled_at

    async def address_usage(self, space: str) -> tuple[int, set[int]]:
        used = {r.destination.index for r in self._s.invoices.values() if r.space == space
                and any(p.status == PaymentStatus.CONFIRMED
                        for p in self._payments(r.invoice.id))}
        return self._s.counters.get(space, 0), used


def _reaches(rec: PaymentRecord, inv: Invoice, after: int, upto: int,
             max_required: int) -> bool:
    """`SqlInvoices.reaching_depth`'s three conditions, for one payment."""
    if rec.block_height is not None:
        reach = rec.block_height + inv.terms.confirmations_required - 1
        if (after + 1 - max_required < rec.block_height <= upto
                and after < reach <= upto):
            return True
    if rec.lock is not None and rec.lock.height is not None \
            and after + 1 < rec.lock.height <= upto + 1:
        return True
    return rec.lock is not None and rec.lock.time is not None


class MemoryPayments:
    def __init__(self, state: State) -> None:
        self._s = state
        self.touched: set[str] = set()

    async def record(
        self, coin: str, txid: str, index: int, invoice_id: str, amount: int,
        block: BlockRef | None, seen_at: datetime, block_time: datetime | None = None,
        lock: Lock | None = None,
    ) -> bool:
        new = await self.record_many(
            [NewPayment(coin, txid, index, invoice_id, amount, seen_at, lock)], block,
            block_time)
        return bool(new)

    async def record_many(self, rows: Sequence[NewPayment], block: BlockRef | None,
                          block_time: datetime | None) -> set[tuple[str, str, int]]:
        self.touched.update(r.invoice_id for r in rows)
        new: set[tuple[str, str, int]] = set()
        for r in rows:
            key = (r.coin, r.txid, r.index)
            known = self._s.payments.get(key)
            if known is None:
                self._s.payments[key] = PaymentRow(self._s.next_seq(), r.invoice_id, PaymentRecord(
                    r.txid, r.index, r.amount, block.hash if block else None,
                    block.height if block else None,
                    PaymentStatus.CONFIRMED if block else PaymentStatus.PENDING,
                    r.seen_at, block_time if block else None, r.coin, r.lock))
                new.add(key)
            elif key not in new:
                known.record = _again(known.record, block)
        return new

    async def for_invoices(self, invoice_ids: Sequence[str]) -> dict[str, list[PaymentRecord]]:
        found: dict[str, list[PaymentRecord]] = {i: [] for i in invoice_ids}
        for p in sorted(self._s.payments.values(), key=lambda p: p.seq):
            if p.invoice_id in found:
                found[p.invoice_id].append(p.record)
        return found

    def _change(self, rows: list[PaymentRow], status: PaymentStatus) -> list[str]:
        for p in rows:
            if status == PaymentStatus.PENDING:
                p.record = replace(p.record, block_hash=None, block_height=None, status=status)
            else:
                p.record = replace(p.record, status=status)
        found = sorted({p.invoice_id for p in rows})
        self.touched.update(found)
        return found

    async def disconnect(self, coins: Sequence[str], block_hash: str) -> list[str]:
        return self._change([p for p in self._s.payments.values() if p.record.coin in coins
                             and p.record.block_hash == block_hash], PaymentStatus.PENDING)

    async def unconfirm(self, coins: Sequence[str], txids: Sequence[str]) -> list[str]:
        return self._change([p for p in self._s.payments.values() if p.record.coin in coins
                             and p.record.txid in txids
                             and p.record.status == PaymentStatus.CONFIRMED],
                            PaymentStatus.PENDING)

    async def revert(self, coins: Sequence[str], txids: Sequence[str]) -> list[str]:
        return self._change([p for p in self._s.payments.values() if p.record.coin in coins
                             and p.record.txid in txids
                             and p.record.status == PaymentStatus.PENDING],
                            PaymentStatus.REVERTED)

    async def unconfirmed_txids(self, coins: Sequence[str]) -> list[str]:
        return sorted({p.record.txid for p in self._s.payments.values()
                       if p.record.coin in coins and p.record.status == PaymentStatus.PENDING})


def _again(record: PaymentRecord, block: BlockRef | None) -> PaymentRecord:
    """A payment seen again: in a block it is confirmed there; back in the mempool a
    reverted one is pending again. First-seen times stay."""
    if block is not None:
        return replace(record, block_hash=block.hash, block_height=block.height,
                       status=PaymentStatus.CONFIRMED)
    if record.status == PaymentStatus.REVERTED:
        return replace(record, status=PaymentStatus.PENDING)
    return record


class MemoryCursors:
    def __init__(self, state: State) -> None:
        self._s = state
        self.changed: set[str] = set()

    async def get(self, feed: str) -> BlockRef | None:
        found = self._s.cursors.get(feed)
        return found[0] if found else None

    async def set(self, feed: str, block: BlockRef, now: datetime) -> None:
        self.changed.add(feed)
        _, state, since = self._s.cursors.get(feed, (block, None, None))
        self._s.cursors[feed] = (block, state, since)

    async def set_catch_up(self, feed: str, state: str | None,
                           since: datetime | None) -> bool:
        found = self._s.cursors.get(feed)
        if found is None:
            return False
        self._s.cursors[feed] = (found[0], state, since)
        return True


class MemoryIdempotency:
    def __init__(self, state: State) -> None:
        self._s = state

    async def claim(self, scope: str, key: str, fingerprint: str, owner: str,
                    now: datetime) -> IdempotencyRecord | None:
        found = self._s.idempotency.get((scope, key))
        if found is not None:
            return found
        self._s.idempotency[(scope, key)] = IdempotencyRecord(
            fingerprint, IdempotencyState.RUNNING, owner, None, now)
        return None

    def _running(self, scope: str, key: str, owner: str) -> IdempotencyRecord | None:
        found = self._s.idempotency.get((scope, key))
        ok = found is not None and found.owner == owner and found.state == IdempotencyState.RUNNING
        return found if ok else None

    async def take_over(self, scope: str, key: str, old_owner: str, owner: str,
                        now: datetime) -> bool:
        found = self._running(scope, key, old_owner)
        if found is None:
            return False
        self._s.idempotency[(scope, key)] = replace(found, owner=owner, updated_at=now)
        return True

    async def complete(self, scope: str, key: str, owner: str, invoice_id: str,
                       now: datetime) -> bool:
        found = self._running(scope, key, owner)
        if found is None:
            return False
        self._s.idempotency[(scope, key)] = replace(
            found, state=IdempotencyState.DONE, invoice_id=invoice_id, updated_at=now)
        return True

    async def release(self, scope: str, key: str, owner: str) -> None:
        if self._running(scope, key, owner) is not None:
            del self._s.idempotency[(scope, key)]


# --- webhooks --------------------------------------------------------------------------
class MemoryEndpoints:
    def __init__(self, state: State) -> None:
        self._s = state

    def _live(self, endpoint_id: str) -> EndpointRow | None:
        row = self._s.endpoints.get(endpoint_id)
        return row if row is not None and row.deleted_at is None else None

    async def add(self, record: EndpointRecord, secret: str) -> None:
        self._s.endpoints[record.id] = EndpointRow(record, secret)

    async def active(self) -> list[EndpointRecord]:
        return sorted((r.record for r in self._s.endpoints.values() if r.deleted_at is None),
                      key=lambda r: r.created_at)

    async def get(self, endpoint_id: str) -> EndpointRecord | None:
        row = self._live(endpoint_id)
        return row.record if row else None

    async def delete(self, endpoint_id: str, now: datetime) -> bool:
        row = self._live(endpoint_id)
        if row is None:
            return False
        row.deleted_at, row.record = now, replace(row.record, enabled=False)
        for d_id, (event_id, d, at) in list(self._s.deliveries.items()):
            if d.endpoint_id == endpoint_id and d.status == DeliveryStatus.PENDING:
                disabled = replace(d, status=DeliveryStatus.DISABLED)
                self._s.deliveries[d_id] = (event_id, disabled, at)
        return True

    async def rotate(self, endpoint_id: str, secret: str, previous_until: datetime) -> bool:
        row = self._live(endpoint_id)
        if row is None:
            return False
        row.previous, row.previous_until, row.secret = row.secret, previous_until, secret
        return True

    async def set_enabled(self, endpoint_id: str, enabled: bool) -> bool:
        row = self._live(endpoint_id)
        if row is None:
            return False
        row.record = replace(row.record, enabled=enabled)
        return True


class MemoryEvents:
    def __init__(self, state: State) -> None:
        self._s = state
        self.requeued = 0

    async def page(self, type_: str | None, after: str | None, limit: int) -> list[EventRecord]:
        rows = sorted(self._s.events.values(), key=lambda e: e.seq, reverse=True)
        rows = [e for e in rows if type_ is None or e.record.type == type_]
        anchor = self._s.events.get(after) if after is not None else None
        if anchor is not None:
            rows = [e for e in rows if e.seq < anchor.seq]
        return [e.record for e in rows[:limit]]

    async def get(self, event_id: str) -> EventRecord | None:
        row = self._s.events.get(event_id)
        if row is None:
            return None
        found = sorted(((at, d_id, d) for d_id, (e, d, at) in self._s.deliveries.items()
                        if e == event_id), key=lambda t: (t[0], t[1]))
        return replace(row.record, deliveries=tuple(d for _, _, d in found))

    async def _requeue(self, chosen: list[str], now: datetime) -> int:
        enabled = {i for i, r in self._s.endpoints.items()
                   if r.record.enabled and r.deleted_at is None}
        count = 0
        for d_id in chosen:
            event_id, d, at = self._s.deliveries[d_id]
            if d.endpoint_id in enabled:
                self._s.deliveries[d_id] = (event_id, replace(
                    d, status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now), at)
                count += 1
        self.requeued += count
        return count

    async def redeliver(self, event_id: str, now: datetime) -> int:
        return await self._requeue([i for i, (e, _, _) in self._s.deliveries.items()
                                    if e == event_id], now)

    async def redeliver_failed(self, since: datetime, now: datetime) -> int:
        return await self._requeue([i for i, (_, d, at) in self._s.deliveries.items()
                                    if d.status == DeliveryStatus.FAILED and at >= since], now)


class MemoryOutbox:
    """`SqlOutbox.publish`: each event once, with a pending delivery per endpoint that
    wants it."""

    def __init__(self, state: State) -> None:
        self._s = state
        self.published = 0

    async def publish(self, evts: Sequence[DomainEvent], now: datetime) -> None:
        endpoints = [r.record for r in self._s.endpoints.values()
                     if r.record.enabled and r.deleted_at is None]
        for event, _order in in_delivery_order(evts):
            event_id = new_id("evt_")
            body = json.dumps({"type": event.type, "timestamp": rfc3339(now),
                               "data": dict(event.data)}, separators=(",", ":"),
                              sort_keys=True)
            self._s.events[event_id] = EventRow(EventRecord(event_id, event.type, now, body),
                                                event.account_id, self._s.next_seq())
            targets = [e for e in endpoints if not e.event_types or event.type in e.event_types]
            for e in targets:
                d_id = new_id("del_")
                self._s.deliveries[d_id] = (event_id, DeliveryRecord(
                    d_id, e.id, DeliveryStatus.PENDING, 0, now, None, None), now)
            if targets:
                self.published += 1  # events with deliveries, as the SQL outbox counts


# --- the unit of work ------------------------------------------------------------------
def _utcnow() -> datetime:
    return datetime.now(UTC)


class MemoryCredit:
    """The credit ledger: one entry per account and cause."""

    def __init__(self, state: State) -> None:
        self._s = state

    async def add(self, entry: CreditEntry) -> bool:
        if any(e.account_id == entry.account_id and e.cause == entry.cause
               for e in self._s.credit):
            return False
        self._s.credit.append(replace(entry, id=len(self._s.credit) + 1))
        return True

    async def find(self, account_id: str, cause: str) -> CreditEntry | None:
        return next((e for e in self._s.credit
                     if e.account_id == account_id and e.cause == cause), None)

    async def balance(self, account_id: str, currency: str | None = None) -> int:
        return sum(e.amount for e in self._s.credit if e.account_id == account_id
                   and (currency is None or e.currency == currency))

    async def entries(self, account_id: str, limit: int = 100,
                      before_id: int | None = None) -> list[CreditEntry]:
        mine = [e for e in reversed(self._s.credit) if e.account_id == account_id
                and (before_id is None or (e.id or 0) < before_id)]
        return mine[:limit]

    async def between(self, start: datetime, end: datetime) -> list[CreditEntry]:
        return [e for e in self._s.credit if start <= e.created_at < end]

    async def candidates(self, since: datetime, now: datetime,
                         limit: int = 500) -> list[str]:
        return []  # the crediting task runs on the SQL store only

    async def aged(self, cutoff: datetime, limit: int = 500) -> list[str]:
        found = {e.account_id for e in self._s.credit if e.created_at < cutoff}
        return sorted(a for a in found if sum(
            e.amount for e in self._s.credit if e.account_id == a) > 0)[:limit]


class MemoryCashTokens:
    """Cash tokens by their keyed hash (`CashTokenRepository`)."""

    def __init__(self, state: State) -> None:
        self._s = state

    async def add(self, token: CashToken, token_hash: str) -> None:
        if token.id in self._s.cash_tokens or any(
                h == token_hash for _, h in self._s.cash_tokens.values()):
            raise Conflict("cash token exists")
        self._s.cash_tokens[token.id] = (token, token_hash)

    async def by_hash(self, token_hash: str) -> CashToken | None:
        return next((t for t, h in self._s.cash_tokens.values() if h == token_hash), None)

    async def get(self, token_id: str) -> CashToken | None:
        found = self._s.cash_tokens.get(token_id)
        return None if found is None else found[0]

    async def open_for(self, account_id: str, now: datetime) -> list[CashToken]:
        return sorted((t for t, _ in self._s.cash_tokens.values()
                       if t.account_id == account_id and t.used_at is None
                       and t.expires_at > now), key=lambda t: (t.created_at, t.id))

    async def of_account(self, account_id: str) -> list[CashToken]:
        return sorted((t for t, _ in self._s.cash_tokens.values()
                       if t.account_id == account_id), key=lambda t: (t.created_at, t.id))

    async def delete(self, token_id: str) -> bool:
        return self._s.cash_tokens.pop(token_id, None) is not None

    async def mark_used(self, token: CashToken) -> bool:
        found = self._s.cash_tokens.get(token.id)
        if found is None or found[0].used_at is not None:
            return False
        self._s.cash_tokens[token.id] = (token, found[1])
        return True

    @staticmethod
    def _due(t: CashToken, used_before: datetime, now: datetime) -> bool:
        return (t.used_at < used_before if t.used_at is not None else t.expires_at <= now)

    async def due(self, used_before: datetime, now: datetime, limit: int = 500) -> list[str]:
        return sorted(i for i, (t, _) in self._s.cash_tokens.items()
                      if self._due(t, used_before, now))[:limit]

    async def erase(self, token_id: str, used_before: datetime, now: datetime) -> bool:
        found = self._s.cash_tokens.get(token_id)
        if found is None or not self._due(found[0], used_before, now):
            return False
        del self._s.cash_tokens[token_id]
        return True

    async def count_for(self, account_id: str) -> int:
        return sum(1 for t, _ in self._s.cash_tokens.values() if t.account_id == account_id)


class MemoryVouchers:
    """Voucher batches and codes (by keyed hash); redeeming is one step, as the SQL
    conditional update is."""

    def __init__(self, state: State) -> None:
        self._s = state

    def _counted(self, batch: VoucherBatch) -> VoucherBatch:
        used = sum(1 for v, _ in self._s.vouchers.values()
                   if v.batch_id == batch.id and v.redeemed_at is not None)
        return replace(batch, redeemed=used, redeemed_value=used * batch.value.minor)

    async def add_batch(self, batch: VoucherBatch, codes: Sequence[NewVoucher]) -> None:
        hashes = {h for _, h in self._s.vouchers.values()}
        if batch.id in self._s.voucher_batches or any(c.code_hash in hashes for c in codes):
            raise Conflict("voucher code or batch exists")
        self._s.voucher_batches[batch.id] = batch
        for c in codes:
            self._s.vouchers[c.id] = (Voucher(c.id, batch.id), c.code_hash)

    async def batches(self, limit: int = 100) -> list[VoucherBatch]:
        found = sorted(self._s.voucher_batches.values(),
                       key=lambda b: (-b.created_at.timestamp(), b.id))
        return [self._counted(b) for b in found[:limit]]

    async def batch(self, batch_id: str) -> VoucherBatch | None:
        found = self._s.voucher_batches.get(batch_id)
        return None if found is None else self._counted(found)

    async def revoke(self, batch_id: str, now: datetime) -> bool:
        found = self._s.voucher_batches.get(batch_id)
        if found is None or found.revoked_at is not None:
            return False
        self._s.voucher_batches[batch_id] = replace(found, revoked_at=now)
        return True

    async def redeem(self, code_hash: str, account_id: str, now: datetime) -> Redeemed | None:
        for vid, (voucher, digest) in self._s.vouchers.items():
            if digest != code_hash:
                continue
            batch = self._s.voucher_batches[voucher.batch_id]
            if voucher.state(batch, now) is not VoucherState.ACTIVE:
                return None
            done = replace(voucher, redeemed_at=now, redeemed_by=account_id)
            self._s.vouchers[vid] = (done, digest)
            return Redeemed(done, batch)
        return None

    async def redeemed_by(self, code_hash: str, account_id: str) -> Redeemed | None:
        for voucher, digest in self._s.vouchers.values():
            if digest == code_hash and voucher.redeemed_by == account_id:
                return Redeemed(voucher, self._s.voucher_batches[voucher.batch_id])
        return None

    async def redeemed_between(self, start: datetime, end: datetime) -> list[Redeemed]:
        found = [Redeemed(v, self._s.voucher_batches[v.batch_id])
                 for v, _ in self._s.vouchers.values()
                 if v.redeemed_at is not None and start <= v.redeemed_at < end]
        return sorted(found, key=lambda r: (r.voucher.redeemed_at or start, r.voucher.id))

    async def totals(self, now: datetime) -> list[VoucherTotals]:
        sums: dict[str, list[int]] = {}
        for v, _ in self._s.vouchers.values():
            b = self._s.voucher_batches[v.batch_id]
            if b.created_at >= now:
                continue
            row = sums.setdefault(b.value.currency, [0, 0, 0])
            for i, counted in enumerate(on_the_books(v, b, now)):
                row[i] += b.value.minor if counted else 0
        return [VoucherTotals(c, *sums[c]) for c in sorted(sums)]


class MemoryStore:
    """The database: committed state, and every commit's events (for assertions)."""

    def __init__(self) -> None:
        self.state = State()
        self.commits = 0

    def unit(self, clock: Clock = _utcnow) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self, clock)

    def event_types(self) -> list[str]:
        return [e.record.type for e in sorted(self.state.events.values(), key=lambda e: e.seq)]


class MemoryUnitOfWork:
    def __init__(self, store: MemoryStore, clock: Clock = _utcnow) -> None:
        self._store = store
        self._clock = clock
        self._collected: list[HasEvents] = []
        self._state: State | None = None

    def _begin(self) -> None:
        s = self._state = copy.deepcopy(self._store.state)
        self._collected = []
        self.accounts = MemoryAccounts(s, self)
        self.sessions = MemorySessions(s)
        self.api_keys = MemoryApiKeys(s)
        self.throttle = MemoryThrottle(s)
        self.security_log = MemorySecurityLog(s)
        self.invoices = MemoryInvoices(s, self)
        self.payments = MemoryPayments(s)
        self.cursors = MemoryCursors(s)
        self.idempotency = MemoryIdempotency(s)
        self.endpoints = MemoryEndpoints(s)
        self.events = MemoryEvents(s)
        self.outbox = MemoryOutbox(s)
        self.credit = MemoryCredit(s)
        self.vouchers = MemoryVouchers(s)
        self.cash_tokens = MemoryCashTokens(s)

    async def __aenter__(self) -> Self:
        self._begin()
        return self

    async def __aexit__(self, _et: type[BaseException] | None, ev: BaseException | None,
                        _tb: TracebackType | None) -> None:
        self._state = None  # whatever was not committed is gone
        self._collected = []

    def collect(self, aggregate: HasEvents) -> None:
        if not any(a is aggregate for a in self._collected):
            self._collected.append(aggregate)

    async def commit(self) -> None:
        assert self._state is not None, "commit outside the unit's block"
        collected, self._collected = self._collected, []
        events = [event for aggregate in collected for event in aggregate.events]
        if events:
            await self.outbox.publish(events, self._clock())
        self._store.state = self._state
        self._store.commits += 1
        for aggregate in collected:
            aggregate.events.clear()
        self._begin()  # anything after commit runs in a fresh transaction


def _conforms(uow: MemoryUnitOfWork) -> tuple[
        AccountsUnit, TwoFactorUnit, RecoveryUnit, EmailChangeUnit, ThrottledUnit, ApiKeysUnit,
        InvoicesUnit, WalletUnit, EndpointsUnit, EventsUnit, CashUnit, VoucherStoreUnit]:
    """mypy's proof that the memory unit is each of these services' unit of work."""
    return uow, uow, uow, uow, uow, uow, uow, uow, uow, uow, uow, uow
