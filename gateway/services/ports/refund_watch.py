"""Refunds on the chain: the watched refund addresses and the outputs seen paying them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from chains.base import BlockRef
from gateway.domain.refund_chain import RefundWatch, Sighting


@dataclass(frozen=True)
class RefundOutput:
    """An output paying a watched refund address, as a block or the mempool showed it."""

    refund_id: str
    coin: str
    txid: str
    output_index: int
    amount: int


@dataclass(frozen=True)
class RecordedRefundOutput:
    refund_id: str
    txid: str
    output_index: int
    amount: int
    match_key: bytes  # the customer's address, as watched (empty once erased)
    block_hash: str | None
    block_height: int | None
    status: str  # pending | confirmed | reverted


class RefundWatchRepository(Protocol):
    async def add(self, watch: RefundWatch, address_space: str, now: datetime) -> bool:
        """False when the refund is watched already."""

    async def open_to(self, coin: str, match_key: bytes) -> str | None:
        """The refund not yet completed that is watched at this address, if any."""

    async def by_match_keys(self, coin: str, match_keys: Sequence[bytes]
                            ) -> dict[bytes, RefundWatch]:
        """The not yet completed watches of `coin` paid to by these keys."""

    async def get_many(self, refund_ids: Sequence[str]) -> list[RefundWatch]: ...

    async def sent(self, coins: Sequence[str]) -> list[str]:
        """Refunds sent and not yet at their depth: a new block may complete them."""

    async def record_many(self, rows: Sequence[RefundOutput], block: BlockRef | None,
                          now: datetime) -> list[str]:
        """Records the outputs (once each; a block confirms those seen before, the
        mempool brings back a reverted one); returns the refunds they pay."""

    async def sightings(self, refund_ids: Sequence[str], tip: BlockRef | None
                        ) -> dict[str, list[Sighting]]: ...

    async def unconfirmed_txids(self, coins: Sequence[str]) -> list[str]:
        """Transactions paying a refund not yet completed that are not in a block."""

    async def disconnect(self, coins: Sequence[str], block_hash: str) -> list[str]: ...

    async def unconfirm(self, coins: Sequence[str], txids: Sequence[str]) -> list[str]: ...

    async def revert(self, coins: Sequence[str], txids: Sequence[str]) -> list[str]: ...

    async def save(self, watch: RefundWatch) -> None: ...

    async def outputs_between(self, start: datetime, end: datetime, coin: str
                              ) -> list[RecordedRefundOutput]:
        """The outputs first seen paying a refund in the period, for reconciliation."""
