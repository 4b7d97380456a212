"""Implements `RefundWatchRepository`: approved refunds' addresses (as match keys only)
and the outputs seen paying them, stored as `payments` are (statuses, block refs)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from chains.base import BlockRef
from gateway.adapters.db.encrypted import REFUND_MATCH_KEY
from gateway.adapters.db.tables import refund_outputs, refund_watches
from gateway.adapters.fields import BlindIndex, FieldCipher
from gateway.domain.payments import PaymentStatus
from gateway.domain.refund_chain import ChainState, RefundWatch, Sighting
from gateway.services.ports.refund_watch import RecordedRefundOutput, RefundOutput

_CHUNK = 300


def _block_values(block: BlockRef | None) -> dict[str, Any]:
    status = PaymentStatus.CONFIRMED if block is not None else PaymentStatus.PENDING
    return {"status": status.value, "block_hash": block.hash if block else None,
            "block_height": block.height if block else None}


def match_key_of(cipher: FieldCipher, row: Any) -> bytes:
    """The watched bytes, decrypted; empty once retention erased them with the address."""
    text = cipher.decrypt_optional(row.match_key_ct, REFUND_MATCH_KEY.ref(row.refund_id))
    return bytes.fromhex(text) if text else b""


class SqlRefundWatches:
    """The watched bytes are the customer's address in another form: encrypted, bound to
    the refund, and looked up by a keyed hash (`match_index`), as emails are."""

    def __init__(self, conn: AsyncConnection, cipher: FieldCipher,
                 index: BlindIndex | None) -> None:
        self._conn = conn
        self._cipher = cipher
        self._index = index

    def _indexed(self, key: bytes) -> str:
        if self._index is None:
            raise RuntimeError("this unit of work has no blind index: refund watches need it")
        return self._index(f"refund-watch:{key.hex()}")

    def _watch(self, row: Any) -> RefundWatch:
        return RefundWatch(
            refund_id=row.refund_id, account_id=row.account_id, coin=row.coin,
            match_key=match_key_of(self._cipher, row), amount=int(row.amount),
            confirmations_required=row.confirmations_required, state=ChainState(row.state),
            txid=row.txid, sent_at=row.sent_at, completed_at=row.completed_at)

    async def add(self, watch: RefundWatch, address_space: str, now: datetime) -> bool:
        sealed = self._cipher.encrypt(watch.match_key.hex(),
                                      REFUND_MATCH_KEY.ref(watch.refund_id))
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(insert(refund_watches).values(
                    refund_id=watch.refund_id, account_id=watch.account_id, coin=watch.coin,
                    address_space=address_space, match_key_ct=sealed,
                    match_index=self._indexed(watch.match_key), amount=watch.amount,
                    confirmations_required=watch.confirmations_required,
                    state=watch.state.value, txid=watch.txid, created_at=now))
        except IntegrityError:
            return False
        return True

    async def open_to(self, coin: str, match_key: bytes) -> str | None:
        w = refund_watches.c
        row = (await self._conn.execute(select(w.refund_id).where(
            w.coin == coin, w.match_index == self._indexed(match_key),
            w.state != ChainState.COMPLETED.value))).first()
        return None if row is None else str(row.refund_id)

    async def by_match_keys(self, coin: str, match_keys: Sequence[bytes]
                            ) -> dict[bytes, RefundWatch]:
        w = refund_watches.c
        found: dict[bytes, RefundWatch] = {}
        by_index = {self._indexed(k): k for k in set(match_keys)}
        indexes = sorted(by_index)
        for i in range(0, len(indexes), _CHUNK):
            rows = await self._conn.execute(select(refund_watches).where(
                w.coin == coin, w.match_index.in_(indexes[i:i + _CHUNK]),
                w.state != ChainState.COMPLETED.value))
            for r in rows:
                watch = self._watch(r)
                if watch.match_key == by_index[r.match_index]:
                    found[watch.match_key] = watch
        return found

    async def get_many(self, refund_ids: Sequence[str]) -> list[RefundWatch]:
        if not refund_ids:
            return []
        rows = await self._conn.execute(select(refund_watches).where(
            refund_watches.c.refund_id.in_(sorted(set(refund_ids))))
            .order_by(refund_watches.c.refund_id))
        return [self._watch(r) for r in rows]

    async def sent(self, coins: Sequence[str]) -> list[str]:
        w = refund_watches.c
        rows = await self._conn.execute(select(w.refund_id).where(
            w.coin.in_(list(coins)), w.state == ChainState.SENT.value))
        return list(rows.scalars())

    async def record_many(self, rows: Sequence[RefundOutput], block: BlockRef | None,
                          now: datetime) -> list[str]:
        if not rows:
            return []
        known = await self._known(rows)
        new = {(r.coin, r.txid, r.output_index): r for r in rows
               if (r.coin, r.txid, r.output_index) not in known}
        where = _block_values(block)
        if new:
            await self._conn.execute(insert(refund_outputs), [
                {"refund_id": r.refund_id, "coin": r.coin, "txid": r.txid,
                 "output_index": r.output_index, "amount": r.amount, "seen_at": now, **where}
                for r in new.values()])
        # A block confirms what the mempool showed; the mempool brings back a reverted one.
        seen = [k for k, status in known.items()
                if block is not None or status == PaymentStatus.REVERTED.value]
        if seen:
            o = refund_outputs.c
            await self._conn.execute(
                update(refund_outputs).where(tuple_(o.coin, o.txid, o.output_index).in_(seen))
                .values(**where))
        return sorted({r.refund_id for r in rows})

    async def _known(self, rows: Sequence[RefundOutput]) -> dict[tuple[str, str, int], str]:
        o = refund_outputs.c
        keys = sorted({(r.coin, r.txid, r.output_index) for r in rows})
        found = await self._conn.execute(
            select(o.coin, o.txid, o.output_index, o.status)
            .where(tuple_(o.coin, o.txid, o.output_index).in_(keys)))
        return {(k.coin, k.txid, k.output_index): k.status for k in found}

    async def sightings(self, refund_ids: Sequence[str], tip: BlockRef | None
                        ) -> dict[str, list[Sighting]]:
        found: dict[str, list[Sighting]] = {i: [] for i in refund_ids}
        if not refund_ids:
            return found
        rows = await self._conn.execute(select(refund_outputs).where(
            refund_outputs.c.refund_id.in_(sorted(set(refund_ids))))
            .order_by(refund_outputs.c.id))
        for r in rows:
            depth = (tip.height - r.block_height + 1
                     if tip is not None and r.block_height is not None
                     and r.status == PaymentStatus.CONFIRMED.value else 0)
            found[r.refund_id].append(Sighting(
                r.txid, r.output_index, int(r.amount), max(depth, 0),
                r.status == PaymentStatus.REVERTED.value))
        return found

    async def unconfirmed_txids(self, coins: Sequence[str]) -> list[str]:
        o, w = refund_outputs.c, refund_watches.c
        rows = await self._conn.execute(
            select(o.txid).join_from(refund_outputs, refund_watches,
                                     o.refund_id == w.refund_id)
            .where(o.coin.in_(list(coins)), o.status == PaymentStatus.PENDING.value,
                   w.state != ChainState.COMPLETED.value).distinct())
        return list(rows.scalars())

    async def _unconfirm(self, *where: Any) -> list[str]:
        o = refund_outputs.c
        ids = sorted(set((await self._conn.execute(select(o.refund_id).where(*where))).scalars()))
        if ids:
            await self._conn.execute(update(refund_outputs).where(*where).values(
                block_hash=None, block_height=None, status=PaymentStatus.PENDING.value))
        return ids

    async def disconnect(self, coins: Sequence[str], block_hash: str) -> list[str]:
        o = refund_outputs.c
        return await self._unconfirm(o.coin.in_(list(coins)), o.block_hash == block_hash)

    async def unconfirm(self, coins: Sequence[str], txids: Sequence[str]) -> list[str]:
        o = refund_outputs.c
        return await self._unconfirm(o.coin.in_(list(coins)), o.txid.in_(list(txids)),
                                     o.status == PaymentStatus.CONFIRMED.value)

    async def revert(self, coins: Sequence[str], txids: Sequence[str]) -> list[str]:
        o = refund_outputs.c
        where = (o.coin.in_(list(coins)), o.txid.in_(list(txids)),
                 o.status == PaymentStatus.PENDING.value)
        ids = sorted(set((await self._conn.execute(select(o.refund_id).where(*where))).scalars()))
        if ids:
            await self._conn.execute(update(refund_outputs).where(*where).values(
                status=PaymentStatus.REVERTED.value))
        return ids

    async def save(self, watch: RefundWatch) -> None:
        await self._conn.execute(update(refund_watches).where(
            refund_watches.c.refund_id == watch.refund_id).values(
            state=watch.state.value, txid=watch.txid, sent_at=watch.sent_at,
            completed_at=watch.completed_at))

    async def outputs_between(self, start: datetime, end: datetime, coin: str
                              ) -> list[RecordedRefundOutput]:
        o, w = refund_outputs.c, refund_watches.c
        rows = await self._conn.execute(
            select(o.refund_id, o.txid, o.output_index, o.amount, w.match_key_ct,
                   o.block_hash, o.block_height, o.status)
            .join_from(refund_outputs, refund_watches, o.refund_id == w.refund_id)
            .where(o.coin == coin, o.seen_at >= start, o.seen_at < end).order_by(o.id))
        return [RecordedRefundOutput(r.refund_id, r.txid, r.output_index, int(r.amount),
                                     match_key_of(self._cipher, r), r.block_hash,
                                     r.block_height, r.status) for r in rows]
