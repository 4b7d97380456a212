"""Vouchers (docs/vouchers.md): batches of codes, each kept only as a keyed hash."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.domain.vouchers import Voucher, VoucherBatch


@dataclass(frozen=True)
class NewVoucher:
    id: str  # vou_...
    code_hash: str  # the keyed hash of the normalised code; the code itself is never stored


@dataclass(frozen=True)
class Redeemed:
    voucher: Voucher
    batch: VoucherBatch


@dataclass(frozen=True)
class VoucherTotals:
    """What finance and reconciliation read, per currency: sold (every code of every batch
    not revoked), redeemed, and the liability left (sold, unredeemed, not expired)."""

    currency: str
    sold: int  # minor units
    redeemed: int
    outstanding: int  # not redeemed, batch neither revoked nor expired


class VoucherRepository(Protocol):
    async def add_batch(self, batch: VoucherBatch, codes: Sequence[NewVoucher]) -> None:
        """The batch and its codes, in one transaction."""

    async def batches(self, limit: int = 100) -> list[VoucherBatch]:
        """Newest first, each with its count of codes redeemed (and their value)."""

    async def batch(self, batch_id: str) -> VoucherBatch | None: ...

    async def revoke(self, batch_id: str, now: datetime) -> bool:
        """False when the batch is unknown or revoked already."""

    async def redeem(self, code_hash: str, account_id: str, now: datetime) -> Redeemed | None:
        """One conditional update: the code with this hash, not yet redeemed, of a batch
        neither revoked nor expired at `now`, becomes redeemed by `account_id`. Whatever
        instances race, exactly one gets it; None for everyone else and for any code that
        does not exist, was used, revoked or expired (the caller cannot tell which)."""

    async def redeemed_by(self, code_hash: str, account_id: str) -> Redeemed | None:
        """The code with this hash, if `account_id` redeemed it (its own retry)."""

    async def redeemed_between(self, start: datetime, end: datetime
                               ) -> list[Redeemed]:
        """Codes redeemed in the period, oldest first (finance)."""

    async def totals(self, now: datetime) -> list[VoucherTotals]:
        """Per currency, sorted by currency."""
