"""Cash by mail: the one-time payment tokens, stored by their keyed hash only
(docs/cash.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from gateway.domain.cash import CashToken


class CashTokenRepository(Protocol):
    async def add(self, token: CashToken, token_hash: str) -> None:
        """Stores a new open token under its keyed hash (never the token)."""

    async def by_hash(self, token_hash: str) -> CashToken | None: ...

    async def get(self, token_id: str) -> CashToken | None: ...

    async def open_for(self, account_id: str, now: datetime) -> list[CashToken]:
        """The account's tokens not used and not expired at `now`."""

    async def delete(self, token_id: str) -> bool: ...

    async def mark_used(self, token: CashToken) -> bool:
        """Records `token`'s envelope (its `used_at`, amount, currency, staff, note) if it
        is still unused; False when another request recorded it first. Call with the
        account row locked."""

    async def due(self, used_before: datetime, now: datetime, limit: int = 500) -> list[str]:
        """Tokens to erase: used before `used_before`, or unused and expired at `now`."""

    async def erase(self, token_id: str, used_before: datetime, now: datetime) -> bool:
        """Deletes the token if it is still due (it may have been used since listed)."""

    async def of_account(self, account_id: str) -> list[CashToken]:
        """Every token the account holds (open, used, expired), oldest first: the
        customer's export."""

    async def count_for(self, account_id: str) -> int:
        """How many rows the account has (what its erasure deletes)."""
