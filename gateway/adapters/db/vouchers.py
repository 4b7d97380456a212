"""Vouchers in the database (`voucher_batches`, `vouchers`; docs/vouchers.md). A code is
found by its keyed hash only, and redeemed by one conditional UPDATE: the row lock the
UPDATE takes (PostgreSQL) or SQLite's one writer makes the second of two instances find
it redeemed already."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.tables import voucher_batches, vouchers
from gateway.domain.money import Fiat
from gateway.domain.vouchers import Voucher, VoucherBatch
from gateway.services.ports.vouchers import NewVoucher, Redeemed, VoucherTotals

_b, _v = voucher_batches.c, vouchers.c
_CHUNK = 500


def batch_of(r: Any, redeemed: int = 0) -> VoucherBatch:
    return VoucherBatch(
        id=r.id, created_at=r.created_at, count=int(r.count),
        value=Fiat(int(r.value_minor), r.currency), plan=r.plan, periods=int(r.periods),
        expires_at=r.expires_at, revoked_at=r.revoked_at, label=r.label,
        created_by=r.created_by, redeemed=redeemed,
        redeemed_value=redeemed * int(r.value_minor))


def _live(now: datetime) -> Any:
    return and_(_b.revoked_at.is_(None), or_(_b.expires_at.is_(None), _b.expires_at > now))


class SqlVouchers:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_batch(self, batch: VoucherBatch, codes: Sequence[NewVoucher]) -> None:
        await self._conn.execute(insert(voucher_batches).values(
            id=batch.id, created_at=batch.created_at, created_by=batch.created_by,
            count=batch.count, value_minor=batch.value.minor, currency=batch.value.currency,
            plan=batch.plan, periods=batch.periods, expires_at=batch.expires_at,
            revoked_at=batch.revoked_at, label=batch.label))
        rows = [{"id": c.id, "batch_id": batch.id, "code_hash": c.code_hash} for c in codes]
        for i in range(0, len(rows), _CHUNK):
            await self._conn.execute(insert(vouchers), rows[i:i + _CHUNK])

    def _with_counts(self) -> Any:
        used = (select(func.count()).where(_v.batch_id == _b.id, _v.redeemed_at.is_not(None))
                .scalar_subquery())
        return select(voucher_batches, used.label("used"))

    async def batches(self, limit: int = 100) -> list[VoucherBatch]:
        rows = await self._conn.execute(
            self._with_counts().order_by(_b.created_at.desc(), _b.id).limit(limit))
        return [batch_of(r, int(r.used)) for r in rows]

    async def batch(self, batch_id: str) -> VoucherBatch | None:
        r = (await self._conn.execute(self._with_counts().where(_b.id == batch_id))).first()
        return None if r is None else batch_of(r, int(r.used))

    async def revoke(self, batch_id: str, now: datetime) -> bool:
        done = await self._conn.execute(update(voucher_batches).where(
            _b.id == batch_id, _b.revoked_at.is_(None)).values(revoked_at=now))
        return bool(done.rowcount)

    async def redeem(self, code_hash: str, account_id: str, now: datetime) -> Redeemed | None:
        live = select(_b.id).where(_live(now)).scalar_subquery()
        row = (await self._conn.execute(
            update(vouchers)
            .where(_v.code_hash == code_hash, _v.redeemed_at.is_(None),
                   _v.batch_id.in_(live))
            .values(redeemed_at=now, redeemed_by=account_id)
            .returning(_v.id, _v.batch_id))).first()
        if row is None:
            return None
        batch = (await self._conn.execute(
            select(voucher_batches).where(_b.id == row.batch_id))).one()
        return Redeemed(Voucher(row.id, row.batch_id, now, account_id), batch_of(batch))

    async def redeemed_by(self, code_hash: str, account_id: str) -> Redeemed | None:
        row = (await self._conn.execute(
            select(_v.id.label("voucher_id"), _v.redeemed_at, _v.redeemed_by,
                   voucher_batches)
            .join(voucher_batches, _b.id == _v.batch_id)
            .where(_v.code_hash == code_hash, _v.redeemed_by == account_id))).first()
        if row is None:
            return None
        return Redeemed(Voucher(row.voucher_id, row.id, row.redeemed_at, row.redeemed_by),
                        batch_of(row))

    async def redeemed_between(self, start: datetime, end: datetime) -> list[Redeemed]:
        rows = await self._conn.execute(
            select(_v.id.label("voucher_id"), _v.redeemed_at, _v.redeemed_by,
                   voucher_batches)
            .join(voucher_batches, _b.id == _v.batch_id)
            .where(_v.redeemed_at >= start, _v.redeemed_at < end)
            .order_by(_v.redeemed_at, _v.id))
        return [Redeemed(Voucher(r.voucher_id, r.id, r.redeemed_at, r.redeemed_by),
                         batch_of(r)) for r in rows]

    async def totals(self, now: datetime) -> list[VoucherTotals]:
        """As the books stood at `now` (`domain.vouchers.on_the_books`, in SQL)."""
        value = _b.value_minor
        redeemed = and_(_v.redeemed_at.is_not(None), _v.redeemed_at < now)
        revoked = and_(_b.revoked_at.is_not(None), _b.revoked_at < now)
        expired = and_(_b.expires_at.is_not(None), _b.expires_at <= now)
        rows = await self._conn.execute(
            select(_b.currency,
                   func.sum(case((or_(~revoked, redeemed), value), else_=0)).label("sold"),
                   func.sum(case((redeemed, value), else_=0)).label("redeemed"),
                   func.sum(case((or_(redeemed, revoked, expired), 0), else_=value))
                   .label("outstanding"))
            .join(voucher_batches, _b.id == _v.batch_id)
            .where(_b.created_at < now)
            .group_by(_b.currency).order_by(_b.currency))
        return [VoucherTotals(r.currency, int(r.sold or 0), int(r.redeemed or 0),
                              int(r.outstanding or 0)) for r in rows]
