"""Invoices, payments, chain cursors and idempotency keys; rates and the chain directory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from chains.base import BlockRef, Destination, Lock, NetworkFacts
from gateway.domain.invoices import Invoice
from gateway.domain.payments import PaymentStatus, confirmations, is_locked
from gateway.domain.states import IdempotencyState, Status


@dataclass(frozen=True)
class PaymentRecord:
    txid: str
    index: int
    amount: int
    block_hash: str | None
    block_height: int | None
    status: PaymentStatus
    seen_at: datetime
    block_time: datetime | None = None  # of the block it was first seen in; None: mempool
    coin: str = ""
    lock: Lock | None = None  # may not count before this height or time

    def confirmations(self, tip: BlockRef | None) -> int:
        return confirmations(self.status, self.block_height,
                             None if tip is None else tip.height)

    def locked(self, tip: BlockRef | None, now: datetime) -> bool:
        if self.lock is None:
            return False
        return is_locked(self.lock.height, self.lock.time,
                         None if tip is None else tip.height, now)


@dataclass(frozen=True)
class NewPayment:
    """A payment to record, matched to its invoice (`PaymentRepository.record_many`)."""

    coin: str
    txid: str
    index: int
    invoice_id: str
    amount: int
    seen_at: datetime
    lock: Lock | None = None


@dataclass(frozen=True)
class InvoiceRecord:
    """An invoice with where it is paid and what was paid to it, for reading."""

    invoice: Invoice
    address: str
    payment_uri: str
    payments: tuple[PaymentRecord, ...]


class InvoiceRepository(Protocol):
    async def allocate(self, space: str, count: int = 1) -> range:
        """The next `count` indexes of an address space, inside the current transaction:
        never handed out twice, whichever coin of the space asks, on any instance."""

    async def add(self, invoice: Invoice, space: str, destination: Destination,
                  payment_uri: str) -> None: ...

    async def get(self, invoice_id: str, for_update: bool = False) -> Invoice | None: ...

    async def read(self, invoice_id: str) -> InvoiceRecord | None: ...

    async def read_with_tip(self, invoice_id: str, feeds: Mapping[str, str]
                            ) -> tuple[InvoiceRecord, BlockRef | None] | None:
        """The invoice, its payments and the tip of its coin's feed (`feeds`: coin ->
        feed; a coin not in it is its own feed), in one round trip."""

    async def page(
        self, account_id: str | None, status: Status | None, after: str | None, limit: int
    ) -> list[InvoiceRecord]: ...

    async def by_match_keys(self, coin: str, match_keys: Sequence[bytes]) -> dict[bytes,
                                                                                  Invoice]:
        """The invoices these keys belong to, locked to commit."""

    async def get_many(self, invoice_ids: Sequence[str]) -> list[Invoice]:
        """These invoices, locked to commit."""

    async def reaching_depth(self, coins: Sequence[str], after: int, upto: int,
                             max_required: int, now: datetime) -> list[str]:
        """Open invoices with a confirmed payment reaching the required confirmations at a
        tip height in (after, upto]."""

    async def open_for_account(self, account_id: str, now: datetime) -> list[Invoice]:
        """The account's invoices still waiting for payment (status new, not expired),
        newest first."""

    async def open_with_payments(self, coins: Sequence[str], now: datetime) -> list[Invoice]:
        """Invoices whose state may change with a new block: not final, with payments."""

    async def due_by_time(self, now: datetime) -> list[Invoice]:
        """Invoices whose expiry or monitoring window has passed without a transition."""

    async def save(self, invoice: Invoice) -> None: ...

    async def save_many(self, changed: Sequence[Invoice]) -> None: ...

    async def address_usage(self, space: str) -> tuple[int, set[int]]:
        """How many addresses of the space were derived, and the indexes that received a
        confirmed payment."""


class PaymentRepository(Protocol):
    async def record(
        self, coin: str, txid: str, index: int, invoice_id: str, amount: int,
        block: BlockRef | None, seen_at: datetime, block_time: datetime | None = None,
        lock: Lock | None = None,
    ) -> bool:
        """Insert or update; True when this (coin, txid, index) was never seen before.
        `seen_at` and `block_time` (the header time of `block`) are kept only from the
        first sighting."""

    async def disconnect(self, coins: Sequence[str], block_hash: str) -> list[str]:
        """Payments in that block become unconfirmed; returns the affected invoice ids."""

    async def unconfirm(self, coins: Sequence[str], txids: Sequence[str]) -> list[str]:
        """Confirmed payments of these transactions are back out of any block (a reorg
        reported by transaction ids); returns the affected invoice ids."""

    async def revert(self, coins: Sequence[str], txids: Sequence[str]) -> list[str]:
        """Unconfirmed payments of these transactions are gone; returns invoice ids."""


    async def record_many(self, rows: Sequence[NewPayment], block: BlockRef | None,
                          block_time: datetime | None) -> set[tuple[str, str, int]]:
        """Insert or update a batch; returns the (coin, txid, index) never seen before."""

    async def for_invoices(self, invoice_ids: Sequence[str]) -> dict[str, list[PaymentRecord]]:
        ...

    async def unconfirmed_txids(self, coins: Sequence[str]) -> list[str]: ...


class CursorRepository(Protocol):
    """One cursor per feed (a node a follower follows, for one or more coins)."""

    async def get(self, feed: str) -> BlockRef | None: ...

    async def set(self, feed: str, block: BlockRef, now: datetime) -> None: ...

    async def set_catch_up(self, feed: str, state: str | None,
                           since: datetime | None) -> bool:
        """What the feed's follower is doing while its node catches up (None: nothing);
        False when the feed has no cursor yet."""
        ...


@dataclass(frozen=True)
class IdempotencyRecord:
    fingerprint: str
    state: IdempotencyState
    owner: str
    invoice_id: str | None
    updated_at: datetime


class IdempotencyRepository(Protocol):
    async def claim(
        self, scope: str, key: str, fingerprint: str, owner: str, now: datetime
    ) -> IdempotencyRecord | None:
        """Insert a running key owned by `owner`; or, when the key exists, return it."""

    async def take_over(
        self, scope: str, key: str, old_owner: str, owner: str, now: datetime
    ) -> bool: ...

    async def complete(self, scope: str, key: str, owner: str, invoice_id: str,
                       now: datetime) -> bool:
        """Mark done, only if `owner` still holds the key."""

    async def release(self, scope: str, key: str, owner: str) -> None: ...


class RateProvider(Protocol):
    async def rate(self, coin: str, currency: str) -> tuple[Decimal, str]:
        """Fiat per whole coin and a description of its source; raises
        `ServiceUnavailable` when no source answers."""


class ChainDirectory(Protocol):
    """Per coin: its follower's address space, feed, addresses and payment URIs; the
    watch-only half of each chain adapter."""

    def coins(self) -> tuple[str, ...]: ...

    def decimals(self, coin: str) -> int: ...

    def address_space(self, coin: str) -> str: ...

    def feed(self, coin: str) -> str:
        """The cursor whose height the coin's confirmations count from."""
        ...

    async def allocate(self, coin: str, indexes: Sequence[int]) -> list[Destination]: ...

    def payment_uri(self, coin: str, destination: Destination, base_units: int) -> str: ...

    def network_facts(self, coin: str) -> NetworkFacts | None:
        """The network the coin is paid on, as its family describes it (None: it says
        nothing)."""
        ...
