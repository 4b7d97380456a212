"""Account credit: the append-only ledger of what customers are owed (docs/credit.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from gateway.domain.credit import CreditEntry


class CreditLedger(Protocol):
    async def add(self, entry: CreditEntry) -> bool:
        """Appends the entry; False (and nothing written) when its account already has an
        entry with the same cause. Call with the account row locked
        (`accounts.get(..., for_update=True)`) when the entry takes from the balance, so
        two instances never spend the same credit."""

    async def find(self, account_id: str, cause: str) -> CreditEntry | None:
        """The account's entry for that cause, if written."""

    async def balance(self, account_id: str, currency: str | None = None) -> int:
        """The sum of the account's entries in `currency` (minor units). Whatever moves
        money names the currency it moves: entries kept in another currency (the account's
        currency changed since) are never counted as this one's (None: all, for reads
        that know there is one)."""

    async def entries(self, account_id: str, limit: int = 100,
                      before_id: int | None = None) -> list[CreditEntry]:
        """Newest first; `before_id` pages back."""

    async def between(self, start: datetime, end: datetime) -> list[CreditEntry]:
        """Every entry of the period, oldest first (finance exports and reconciliation)."""

    async def candidates(self, since: datetime, now: datetime,
                         limit: int = 500) -> list[str]:
        """Ids of invoices (expired since `since`) whose payments may owe credit not yet
        written, or whose credited payments reverted, or whose spent credit may be due
        back: what the crediting task looks at (it decides, and writes each cause once)."""

    async def aged(self, cutoff: datetime, limit: int = 500) -> list[str]:
        """Accounts with a positive balance and an entry older than `cutoff`."""
