"""The payments ledger finance reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.domain.payments import PaymentStatus


@dataclass(frozen=True)
class LedgerRow:
    id: int
    seen_at: datetime
    invoice_id: str
    account_id: str
    coin: str
    txid: str
    output_index: int
    amount: int
    decimals: int
    rate: str  # fiat per whole coin, locked on the invoice
    fiat_currency: str
    block_hash: str | None
    block_height: int | None
    status: PaymentStatus
    address: str
    match_key: bytes
    # A settled plan invoice: the plan and the period of the account's time it paid for.
    plan: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None


class Ledger(Protocol):
    async def page(self, start: datetime | None, end: datetime | None, coin: str | None,
                   after: int | None, limit: int) -> list[LedgerRow]: ...

    async def count(self, start: datetime | None, end: datetime | None,
                    coin: str | None) -> int: ...

    async def by_txid(self, txid: str) -> list[LedgerRow]: ...

    async def invoice_keys(self, coin: str) -> dict[bytes, str]: ...
