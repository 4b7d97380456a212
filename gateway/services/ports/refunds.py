"""Refunds (docs/refunds.md): their store, and what the chains tell the refund service
about an address and a refund's instructions (wired by the bootstrap; the services never
import `chains`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.domain.refunds import Quote, Refund


@dataclass(frozen=True)
class PaidOutput:
    """An output the gateway recorded as paid (confirmed) to one of its own addresses."""

    txid: str
    output_index: int
    amount: int  # base units
    match_key: bytes
    index: int  # the address's derivation index


class RefundRepository(Protocol):
    async def add(self, refund: Refund) -> None: ...

    async def get(self, refund_id: str, for_update: bool = False) -> Refund | None:
        """`for_update`: the row stays locked to the end of the transaction (approvals
        by two members at once are then taken one after the other)."""

    async def save(self, refund: Refund) -> None:
        """Its status, quote, transaction and any approval not yet stored."""

    async def of_account(self, account_id: str, limit: int = 50) -> list[Refund]:
        """Newest first."""

    async def open(self, limit: int = 200) -> list[Refund]:
        """Requested, approved and sent refunds, oldest first: the finance queue."""

    async def paid_outputs(self, coin: str) -> list[PaidOutput]:
        """Confirmed payments to our own addresses of this coin, oldest first."""

    async def spent_outputs(self, coin: str) -> set[tuple[str, int]]:
        """The outpoints that an approved, sent or completed refund's PSBT spends."""

    async def paid_by(self, coin: str, txid: str) -> str | None:
        """The refund this transaction already pays (or proves), if any."""

    async def next_change_index(self, coin: str) -> int:
        """One past the highest change index a refund of this coin used (0 at first)."""

    async def addresses_due(self, before: datetime) -> list[str]:
        """Refunds that still hold an address or tx key and ended before `before`, or
        whose account is erased (retention)."""

    async def erase_address(self, refund_id: str, now: datetime) -> bool:
        """Clears the address and the tx key; False when they already were."""


class Coins(Protocol):
    """The accepted coins and their decimal places (the chain directory's part refunds
    read)."""

    def coins(self) -> tuple[str, ...]: ...

    def decimals(self, coin: str) -> int: ...


class RefundChains(Protocol):
    """The coin's chain family, as far as refunds need it."""

    def check_address(self, coin: str, address: str) -> str:
        """The address normalised; `InvalidInput("address", ...)` when the coin's network
        cannot pay it."""

    async def prepare(self, coin: str, address: str, amount: int,
                      spendable: Sequence[PaidOutput], change_index: int,
                      rate: str) -> Quote:
        """What the operator's wallet signs and sends; `Conflict` with the chain's reason
        when it cannot be prepared."""

    def watch_target(self, coin: str, address: str) -> WatchTarget | None:
        """How the watcher finds the refund's payment at `address`; None when the coin's
        family cannot watch someone else's address (Monero: a tx key proves it)."""

    def confirmations(self, coin: str) -> int:
        """The coin's depth, as for invoices: a refund at it is completed."""

    def proves_payments(self, coin: str) -> bool:
        """Whether the coin's refunds are proven by a txid and tx key the operator enters
        (Monero: nobody can watch someone else's address)."""

    async def check_tx_key(self, coin: str, txid: str, tx_key: str,
                           address: str) -> ProvenPayment:
        """`InvalidInput` with the chain's reason when the txid or key is wrong."""


@dataclass(frozen=True)
class WatchTarget:
    match_key: bytes  # what a payment to the address is matched on
    address_space: str  # the follower that watches it
    confirmations: int  # the coin's depth, as for invoices


@dataclass(frozen=True)
class ProvenPayment:
    """What a tx key proves a transaction paid to an address (Monero `check_tx_key`)."""

    received: int  # base units
    confirmations: int


@dataclass(frozen=True)
class RefundPolicy:
    """`[credit]`: the least refund per coin (base units), the amount (minor units of the
    account's currency) above which two members must approve (None: one always)."""

    minimums: dict[str, int]
    second_approval_above: int | None = None
